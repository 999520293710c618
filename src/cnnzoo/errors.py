"""Exceptions with messages a user can act on. The CLI prints the message (no traceback) and
exits with the error's `exit_code`: 2 for bad input (the default), 1 for a job that ran and
failed (JobFailedError)."""

from __future__ import annotations

import difflib
from typing import Iterable


class CnnzooError(Exception):
    """Base class: anything the user did wrong (bad name, bad shape, bad file)."""

    exit_code: int = 2


class JobFailedError(CnnzooError):
    """The input was fine and the job ran, but it failed (a NaN loss, an export whose outputs
    disagree, a benchmark side that fell back to eager): exit code 1."""

    exit_code = 1


class OutputWriteError(JobFailedError):
    """A file could not be written: a full disk, a quota, a read-only file system, no permission
    (exit 1). Nothing half-written is left: the writers are atomic (cnnzoo.files)."""


class UnknownModelError(CnnzooError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(CnnzooError, ValueError):
    pass


class InputShapeError(CnnzooError, ValueError):
    pass


class ModelFileError(CnnzooError, ValueError):
    """A model file (weights and record), a plain weights file or an ONNX export that cannot be
    read, or whose tensors do not fit the model."""


class TrainingStateError(CnnzooError, ValueError):
    """A training state for --resume (a run's checkpoint.safetensors, or a torch.save checkpoint
    of another trainer) that cannot be read, is unsafe, or does not fit the run."""


def closest(name: str, options: Iterable[str], n: int = 5) -> list[str]:
    """Closest options to `name`, for 'did you mean' messages."""
    options = list(options)
    close = difflib.get_close_matches(name, options, n=n, cutoff=0.5)
    if not close:  # fall back to substring matches, e.g. 'resnet' -> resnet18, ...
        close = [o for o in options if name.lower() in o.lower()][:n]
    return close
