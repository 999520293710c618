"""ExecuTorch programs (.pte) for phones: export, check against eager, run, predict.

The lowering is ExecuTorch's own: torch.export.export -> to_edge_transform_and_lower with the
XNNPACK partitioner (the CPU delegate ExecuTorch ships for Android and iOS) -> to_executorch.
The program takes a batch of 1 (what a phone classifies; `PteModel` loops over a larger batch).
Before anything is written, the program is loaded by `executorch.runtime` and run on random
inputs beside the eager model; the max abs difference must be within `atol` (ProgramCheckError).

A .pte has no slot for free-form metadata (its "constant methods" hold numbers and tensors
only), so the preprocessing and class names travel BESIDE the program, in a sidecar JSON
`NAME.pte.json` (`sidecar_path`): {"format": SIDECAR_FORMAT, "program_sha256", "input_shape",
"int8", "record"} where record is the ONNX export's record (deploy.export.deploy_record: model,
num_classes, in_chans, preprocess, classes). The hash binds the sidecar to its program: a .pte
without a cnnzoo sidecar (another program's) or with one written for other bytes is refused,
as is a file that is not an ExecuTorch program at all (no "ET" identifier).

int8 (`quantize_program`): PT2E quantization with ExecuTorch's XNNPACKQuantizer (symmetric,
per-channel weights, static activations calibrated on real images), lowered the same way.

ExecuTorch is optional: pip install 'cnnzoo[mobile]'.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from ..contract import logits_of
from ..data.preprocess import Preprocess
from ..errors import InvalidArgumentError, JobFailedError, ModelFileError
from ..files import atomic_write_bytes, atomic_write_text
from ..modelfile import check_record

SIDECAR_FORMAT = "cnnzoo.executorch/1"
PTE_SUFFIX = ".pte"
CHECK_INPUTS = 3  # random batch-1 inputs the eager check runs


class ProgramCheckError(JobFailedError):
    """The ExecuTorch program disagrees with the eager model beyond the tolerance (exit 1)."""


class LogitsOnly(nn.Module):
    """A zoo model as the plain tensor -> logits function torch.export captures. (deploy.export
    has its own for the other targets; it imports this module, so this one cannot import it.)"""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x))


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where a program's preprocessing and class names live: NAME.pte.json beside NAME.pte."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _need_executorch() -> None:
    import logging

    # torchao (an ExecuTorch dependency) registers an Enum with torch's pytree on import, and
    # torch logs a deprecation warning about it to the terminal: not the user's concern
    pytree_log = logging.getLogger("torch.utils._pytree")
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        import executorch.runtime  # noqa: F401  (the runtime predict needs)
    except ImportError:
        raise InvalidArgumentError("ExecuTorch is not installed: pip install 'cnnzoo[mobile]' "
                                   "(executorch 1.5.x with its XNNPACK delegate)") from None
    finally:
        pytree_log.setLevel(level)


@contextmanager
def _quiet_fd2() -> Iterator[None]:
    """ExecuTorch's C++ log lines (cpuinfo probes when XNNPACK starts) go to fd 2 directly:
    keep them off the user's terminal while the runtime loads a program."""
    import sys

    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def lower(module: nn.Module, example: torch.Tensor) -> bytes:
    """The .pte bytes of `module` (tensor -> logits) for inputs shaped like `example`."""
    _need_executorch()
    import warnings

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.export.export(module, (example,))
        edge = to_edge_transform_and_lower(prog, partitioner=[XnnpackPartitioner()])
        return bytes(edge.to_executorch().buffer)


def run_program(program: bytes | str | os.PathLike, x: torch.Tensor) -> torch.Tensor:
    """Run a .pte (bytes or a path) on `x` (CPU float32, any batch: one image at a time)."""
    data = program if isinstance(program, bytes) else Path(program).read_bytes()
    method = _load_method(data, str(program) if not isinstance(program, bytes) else "the program")
    outs = [method.execute([x[i:i + 1].detach().float().cpu().contiguous()])[0]
            for i in range(x.shape[0])]
    return torch.cat(outs)


def _load_method(data: bytes, name: str) -> Any:
    check_magic(data, name)
    _need_executorch()
    from executorch.runtime import Runtime

    try:
        with _quiet_fd2():
            program = Runtime.get().load_program(data)
            method = program.load_method("forward")
    except Exception as err:  # the runtime raises RuntimeError/ValueError for a damaged program
        raise ModelFileError(f"{name} is not a loadable ExecuTorch program "
                             f"({type(err).__name__}: {err})") from None
    # The Method points into the Program and the Program into `data`, without keeping them
    # alive: drop either and the next call reads freed memory (garbage shapes, or a crash).
    return _Bound(method, (program, data))


class _Bound:
    """A loaded method with what it needs kept alive."""

    def __init__(self, method: Any, keep: tuple[Any, ...]) -> None:
        self.method, self._keep = method, keep

    def execute(self, inputs: list[torch.Tensor]) -> list[Any]:
        return self.method.execute(inputs)


def check_magic(data: bytes, name: str) -> None:
    """Refuse bytes that are not an ExecuTorch flatbuffer (file identifier "ETnn" at 4..8)."""
    if len(data) < 8 or data[4:6] != b"ET" or not data[6:8].isdigit():
        raise ModelFileError(f"{name} is not an ExecuTorch program (.pte): no ExecuTorch "
                             "identifier in its header")


def check_against(model: nn.Module, program: bytes, input_size: tuple[int, ...], atol: float,
                  label: str) -> dict[str, Any]:
    """Run the program and `model` on the same random batch-1 inputs; ProgramCheckError when
    they differ by more than `atol` (the other targets' check, at batch 1): ProgramCheckError."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(CHECK_INPUTS, *input_size, generator=gen)
    with torch.no_grad():
        ref = logits_of(model(x))
    got = run_program(program, x)
    if got.shape != ref.shape:
        raise ProgramCheckError(f"{label}: output shape {tuple(got.shape)} != {tuple(ref.shape)}")
    worst, scale = float((got - ref).abs().max()), float(ref.abs().max())
    if not worst <= atol:  # also catches NaN
        raise ProgramCheckError(f"{label} differs from the model by {worst:.3g} (> {atol:g}) on the "
                               f"same inputs; its outputs reach {scale:.3g}; the export was not kept")
    return {"max_abs_diff": worst, "checked_batches": [1], "checked_inputs": CHECK_INPUTS,
            "atol": atol, "max_abs_output": scale}


def write_program(out: Path, program: bytes, record: dict[str, Any], input_size: tuple[int, ...],
                  int8: bool = False) -> None:
    """The program, then its sidecar (a crash between leaves a program that is refused, since
    an old sidecar names other bytes: never a program read with the wrong preprocessing)."""
    atomic_write_bytes(out, program)
    side = {"format": SIDECAR_FORMAT, "program_sha256": hashlib.sha256(program).hexdigest(),
            "input_shape": [1, *input_size], "int8": int8, "record": record}
    atomic_write_text(sidecar_path(out), json.dumps(side, indent=1) + "\n")


def export_pte(model: nn.Module, out: str | os.PathLike, input_size: tuple[int, int, int],
               record: dict[str, Any], atol: float = 1e-4) -> dict[str, Any]:
    """Lower `model` (a copy, eval, float32, CPU) to `out` (.pte) plus its sidecar, checked
    against eager first; returns the export report (as deploy.export.export_model's)."""
    import copy

    model = copy.deepcopy(model).eval().float().cpu()
    example = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        program = lower(LogitsOnly(model), example)
    report = check_against(model, program, input_size, atol, "executorch export")
    out = Path(out)
    write_program(out, program, record, input_size)
    report.update({"format": "executorch", "out": str(out), "sidecar": str(sidecar_path(out)),
                   "input_size": list(input_size), "dynamic_batch": False, "bytes": len(program),
                   "delegate": "XNNPACK"})
    return report


def quantize_program(model: nn.Module, calibration: Iterable[torch.Tensor],
                     input_size: tuple[int, int, int]) -> bytes:
    """int8 .pte bytes: PT2E with XNNPACKQuantizer, activations calibrated on `calibration`
    (image batches, preprocessed as the model's record says), lowered to XNNPACK."""
    _need_executorch()
    import copy
    import warnings

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    plain = LogitsOnly(copy.deepcopy(model).eval().float().cpu())
    example = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prepared = prepare_pt2e(torch.export.export(plain, (example,)).module(), quantizer)
        for batch in calibration:  # the captured graph has a batch of 1
            for i in range(batch.shape[0]):
                prepared(batch[i:i + 1].float())
        converted = convert_pt2e(prepared)
        return lower(converted, example)


def read_pte_record(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """(sidecar, program bytes) of a cnnzoo .pte, every check passed: an ExecuTorch program,
    with a cnnzoo sidecar written for exactly these bytes and a well-formed record."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no such ExecuTorch program: {path}")
    data = path.read_bytes()
    check_magic(data, str(path))
    side_file = sidecar_path(path)
    if not side_file.is_file():
        raise ModelFileError(
            f"{path} has no cnnzoo sidecar ({side_file.name}): it was not written by `cnnzoo export "
            "--to executorch`, so its preprocessing and classes are unknown; export it with cnnzoo, or "
            "predict with the model file it came from")
    try:
        side = json.loads(side_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        side = None
    if not isinstance(side, dict) or side.get("format") != SIDECAR_FORMAT:
        raise ModelFileError(f"{side_file} is not a cnnzoo ExecuTorch sidecar "
                             f"(format {SIDECAR_FORMAT!r})")
    if side.get("program_sha256") != hashlib.sha256(data).hexdigest():
        raise ModelFileError(f"{side_file} was written for another program than {path} (its "
                             "program_sha256 does not match): the .pte was replaced or the "
                             "sidecar copied from another export; export again")
    check_record(side.get("record"), side_file)  # the model file's rules: sizes bounded, stds > 0
    pp = _check_record(side.get("record"), side_file)
    if side.get("input_shape") != [1, *pp.input_size]:
        raise ModelFileError(f"{side_file}: input_shape {side.get('input_shape')!r} is not the "
                             f"preprocessing's {[1, *pp.input_size]}")
    return side, data


def _check_record(record: Any, where: Path) -> Preprocess:
    """The sidecar's record as predict needs it; ModelFileError naming what is wrong."""
    if not isinstance(record, dict):
        raise ModelFileError(f"{where}: its 'record' is not a JSON object")
    n, chans = record.get("num_classes"), record.get("in_chans")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ModelFileError(f"{where}: num_classes must be a positive integer, got {n!r}")
    if chans not in (1, 3):
        raise ModelFileError(f"{where}: in_chans must be 1 or 3, got {chans!r}")
    classes = record.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != n
                                or not all(isinstance(c, str) for c in classes)):
        raise ModelFileError(f"{where}: classes must be {n} names")
    if not isinstance(record.get("preprocess"), dict):
        raise ModelFileError(f"{where}: preprocess must be a JSON object")
    pp = Preprocess.from_record(record["preprocess"], Preprocess.default(chans, (224, 224)))
    if pp.in_chans != chans:
        raise ModelFileError(f"{where}: the preprocessing makes {pp.in_chans}-channel inputs but "
                             f"the program takes {chans}")
    return pp


class PteModel(nn.Module):
    """An ExecuTorch program behind nn.Module's call (CPU): float batch in, logits out."""

    def __init__(self, program: bytes, record: dict[str, Any], name: str = "the program") -> None:
        super().__init__()
        self.method = _load_method(program, name)
        self.model_name = record.get("model")
        self.in_chans = int(record.get("in_chans") or 3)
        self.num_classes = record.get("num_classes")
        # predict() asks the model's device through its parameters
        self._device_probe = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu()
        return torch.cat([self.method.execute([x[i:i + 1].contiguous()])[0]
                          for i in range(x.shape[0])])


def load_pte(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """(model, record) for a cnnzoo .pte, as deploy.predict.load_for_inference gives them."""
    _need_executorch()
    side, data = read_pte_record(path)
    record = side["record"]
    return PteModel(data, record, str(path)).eval(), record
