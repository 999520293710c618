"""Complexity analysis: the lecture's per-layer cost tables for any nn.Module.

    report = cnnzoo.analyze("alexnet", input_size=(3, 227, 227))
    print(report.to_table()); report.total_params, report.total_macs, report.aggregate(1)
"""

from ..contract import min_input_size
from .core import AnalysisError, analyze, receptive_field
from .memory import TrainingMemory, training_memory
from .report import LayerRow, Report

__all__ = ["analyze", "min_input_size", "receptive_field", "training_memory", "Report",
           "LayerRow", "TrainingMemory", "AnalysisError"]
