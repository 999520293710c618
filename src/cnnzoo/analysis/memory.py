"""Training-memory estimate (seed 001: "TOTAL memory ... only forward! ~*2 for bwd").

Assumptions (float32 everywhere, no activation checkpointing, no mixed precision):
- activations kept for backward = the network input + every counted layer output, for the
  batch (the seeds' memory column; in-place activations and dropout add nothing);
- the gradient flowing back through the network is as large as the biggest of those outputs
  at any moment, but grows to their sum only in the worst case: we count the sum once more,
  which is the seeds' "x2 for backward";
- parameters + their gradients (one copy each), + optimizer state per parameter:
  sgd 0, momentum 1 (velocity), nesterov 1, rmsprop 1 (square average), adagrad 1,
  adam / adamw 2 (first and second moments);
- framework workspace (cuDNN), allocator fragmentation and the CUDA context are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import InvalidArgumentError

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adagrad": 1,
                    "adam": 2, "adamw": 2}
BYTES = 4


class Costs(Protocol):
    """What the estimate reads from a Report (report.py imports this module, not the reverse)."""

    batch_size: int

    @property
    def total_memory(self) -> int: ...

    @property
    def input_memory(self) -> int: ...

    @property
    def total_params(self) -> int: ...


@dataclass(frozen=True)
class TrainingMemory:
    batch_size: int
    optimizer: str
    activations: int  # bytes kept for backward
    activation_grads: int  # bytes of gradients w.r.t. activations (upper bound)
    params: int
    grads: int
    optimizer_state: int

    @property
    def total(self) -> int:
        return (self.activations + self.activation_grads + self.params + self.grads
                + self.optimizer_state)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def __str__(self) -> str:
        mb = 2**20
        return (f"training memory (batch {self.batch_size}, {self.optimizer}): "
                f"{self.total / mb:,.1f} MB = activations {self.activations / mb:,.1f} + their "
                f"gradients {self.activation_grads / mb:,.1f} + params {self.params / mb:,.1f} + "
                f"grads {self.grads / mb:,.1f} + optimizer state {self.optimizer_state / mb:,.1f}")


def training_memory(report: Costs, batch_size: int | None = None, optimizer: str = "sgd") -> TrainingMemory:
    """Estimate training memory of the model in `report` for `batch_size` images."""
    opt = optimizer.lower()
    if opt not in OPTIMIZER_STATES:
        raise InvalidArgumentError(
            f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_STATES)}")
    b = report.batch_size if batch_size is None else batch_size
    if not isinstance(b, int) or isinstance(b, bool) or b < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {b!r}")
    per_sample = (report.total_memory + report.input_memory) // report.batch_size
    acts = per_sample * b
    p = report.total_params * BYTES
    return TrainingMemory(batch_size=b, optimizer=opt, activations=acts, activation_grads=acts,
                          params=p, grads=p, optimizer_state=p * OPTIMIZER_STATES[opt])
