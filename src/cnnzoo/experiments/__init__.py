"""`cnnzoo experiment`: the lectures' claims as experiments anyone can rerun.

    from cnnzoo.experiments import EXPERIMENTS, run_experiment
    result = run_experiment("stacked-3x3", size="quick", out="exp")  # exp/stacked-3x3.json + .png
    result["verdict"]  # {"status": "reproduced" | "partly" | "not shown" | "contradicted", ...}
"""

from .catalogue import EXPERIMENTS, Experiment, get_experiment, run_experiment
from .common import SIZES, Context
from .training import ensemble_errors

__all__ = ["EXPERIMENTS", "Experiment", "get_experiment", "run_experiment", "SIZES", "Context",
           "ensemble_errors"]
