"""`cnnzoo experiment`: the lectures' claims as experiments anyone can rerun.

    from cnnzoo.experiments import EXPERIMENTS, run_experiment
    result = run_experiment("separable", size="quick", out="exp", seeds=3)  # exp/separable.json + .png
    result["verdict"]  # {"status": "reproduced" | "not reproduced" | "contradicted", ...}
    result["measured"]["arms"]  # per arm: the seeds' spread (mean, std, min, max) of each error

Without `data`, the trained experiments run on Fashion-MNIST (datafind.py); the verdict comes
from the seeds' spread by one rule (verdicts.py).
"""

from .catalogue import EXPERIMENTS, Experiment, get_experiment, run_experiment
from .common import SIZES, Context
from .training import ensemble_errors

__all__ = ["EXPERIMENTS", "Experiment", "get_experiment", "run_experiment", "SIZES", "Context",
           "ensemble_errors"]
