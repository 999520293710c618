"""Fast inference paths, each checked against the eager model before it is handed out.

    fast = cnnzoo.deploy.fastpath.optimize(model, example)          # backend="auto"
    logits = fast(x)                                          # any batch size

Backends:
  onnxruntime  export to ONNX in memory, run by ONNX Runtime's CPU provider with every graph
               optimisation on (BN folded into convs, conv+activation fusion, blocked NCHWc
               layouts) and its threads sleeping rather than spinning while they wait (on a
               shared CPU spinning threads steal each other's cores). The CPU default in fp32.
  compile      channels_last + torch.compile (inductor) with freezing (weights become constants:
               BN folded, weights pre-packed for oneDNN), optional bf16 autocast (on CPUs with
               AMX, e.g. Sapphire Rapids, bf16 is several times faster); on CUDA with CUDA graphs.
               The CUDA default (in bf16).
  jit          torch.jit.trace + freeze + optimize_for_inference (oneDNN conv/BN/ReLU fusion).
  eager        channels_last only.

Every backend is compared with the eager float32 model on `example` and must agree within the
tolerance of its precision (FastPathError otherwise), so a fast path never changes answers
silently. Paths that freeze weights (compile, jit, onnxruntime) are snapshots: build a new one
after changing the model's weights. Their benchmark is cnnzoo.bench.bench_fastpath; measured
speeds: benchmarks/results/speed.md.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Callable

import torch
from torch import nn

from .. import devices
from ..contract import logits_of
from ..errors import CnnzooError, InvalidArgumentError
from ..precision import autocast

# what every backend builds: a batch in, the model's main logits out
_Forward = Callable[[torch.Tensor], torch.Tensor]

BACKENDS = ("auto", "onnxruntime", "compile", "jit", "eager")
# max |fast - eager| allowed, relative to max |eager| (plus a small absolute floor)
TOLERANCE = {"fp32": 1e-3, "bf16": 6e-2}


class FastPathError(CnnzooError):
    """A fast path could not be built, or its outputs disagree with the eager model."""


class FastModel:
    """An inference-only callable for one model: call it like the model (eval mode, no grad)."""

    def __init__(self, fn: _Forward, backend: str, precision: str,
                 device: torch.device, channels_last: bool) -> None:
        self._fn = fn
        self.backend, self.precision, self.device = backend, precision, device
        self.channels_last = channels_last
        self.max_abs_diff: float | None = None  # against eager, set by optimize(check=True)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)

    def __repr__(self) -> str:
        return (f"FastModel(backend={self.backend!r}, precision={self.precision!r}, "
                f"device={str(self.device)!r}, channels_last={self.channels_last})")


def default_backend(device: torch.device) -> str:
    if devices.is_cuda(device):
        return "compile"
    try:
        import onnxruntime  # noqa: F401  (optional dependency: probed, not required)
    except ImportError:
        return "jit"
    return "onnxruntime"


def optimize(model: nn.Module, example: torch.Tensor, backend: str = "auto", *,
             precision: str | None = None, channels_last: bool = True,
             compile_mode: str | None = None, threads: int | None = None,
             check: bool = True) -> FastModel:
    """A fast inference callable for `model`, checked against it on `example`.

    `example` fixes the device and the per-sample shape (the batch size stays free).
    precision: "fp32" (default on CPU) or "bf16" (autocast; default on CUDA). `threads`: ONNX
    Runtime's intra-op threads (default: torch.get_num_threads()).
    """
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"unknown fast-path backend {backend!r}; choose one of "
                                   f"{', '.join(BACKENDS)}")
    if not isinstance(example, torch.Tensor) or example.dim() < 2:
        raise InvalidArgumentError("example must be a batched input tensor, e.g. (1, 3, 224, 224)")
    device = example.device
    if backend == "auto":
        backend = default_backend(device)
    precision = precision or ("bf16" if devices.is_cuda(device) else "fp32")
    if precision not in TOLERANCE:
        raise InvalidArgumentError(f"precision must be fp32 or bf16, got {precision!r}")
    model = model.eval()
    if backend == "onnxruntime":
        if precision != "fp32":
            raise InvalidArgumentError("the onnxruntime fast path runs in fp32 only")
        fn = _onnxruntime(model, example, threads or torch.get_num_threads())
    elif backend == "compile":
        fn = _torch_path(model, device, precision, channels_last, compile_mode=compile_mode,
                         compiled=True)
    elif backend == "jit":
        fn = _jit(model, example, precision, channels_last)
    else:
        fn = _torch_path(model, device, precision, channels_last, compiled=False)
    fast = FastModel(fn, backend, precision, device, channels_last and backend != "onnxruntime")
    if check:
        check_against(fast, model, example)
    return fast


def check_against(fast: FastModel, model: nn.Module, x: torch.Tensor) -> float:
    """Max |fast(x) - model(x)| (eager, float32); FastPathError beyond the precision's tolerance."""
    with torch.inference_mode():
        ref = logits_of(model.eval()(x)).float()
        got = fast(x).float()
    if got.shape != ref.shape:
        raise FastPathError(f"{fast.backend} fast path returned shape {tuple(got.shape)}, "
                            f"the model {tuple(ref.shape)}")
    diff = float((got - ref).abs().max())
    bound = 1e-5 + TOLERANCE[fast.precision] * float(ref.abs().max())
    if not diff <= bound:  # NaN fails too
        raise FastPathError(f"{fast.backend} fast path ({fast.precision}) differs from the eager "
                            f"model by {diff:.3g} (allowed {bound:.3g}) on the same input")
    fast.max_abs_diff = diff
    return diff


# ---------------------------------------------------------------------------------------------
# backends


def _torch_path(model: nn.Module, device: torch.device, precision: str, channels_last: bool,
                compile_mode: str | None = None, compiled: bool = True) -> _Forward:
    fast_model = model
    if channels_last:
        # a copy keeps the caller's model in its own memory format
        fast_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    net = fast_model
    cudagraphs = False
    if compiled:
        if compile_mode is not None:
            net = torch.compile(fast_model, mode=compile_mode)
            cudagraphs = devices.is_cuda(device) and compile_mode in ("reduce-overhead",
                                                                    "max-autotune")
        else:
            # freezing: constant-fold BN into convs and pre-pack weights (the big CPU win);
            # CUDA graphs on CUDA, where inference shapes are static (one graph per batch size)
            cudagraphs = devices.is_cuda(device)
            net = torch.compile(fast_model, options={"freezing": True,
                                                     "triton.cudagraphs": cudagraphs})

    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.inference_mode(), autocast(device, precision == "bf16"):
            out = logits_of(net(x))
        # CUDA-graph outputs are overwritten by the next replay: hand back our own copy
        return out.clone() if cudagraphs else out

    return run


def _jit(model: nn.Module, example: torch.Tensor, precision: str, channels_last: bool) -> _Forward:
    if precision != "fp32":
        raise InvalidArgumentError("the jit fast path runs in fp32 only")
    net = copy.deepcopy(model).eval()
    ex = example
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        ex = example.contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_LogitsOnly(net).eval(), ex, check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as err:  # tracing failures come in many exception types
        raise FastPathError(f"torch.jit could not trace {type(model).__name__}: {err}") from err

    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return frozen(x)

    return run


class _LogitsOnly(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.net(x))


def export_onnx_bytes(model: nn.Module, example: torch.Tensor, opset: int = 17) -> bytes:
    """The model as an ONNX graph (bytes) with a dynamic batch dimension."""
    buf = io.BytesIO()
    net = _LogitsOnly(model).eval().cpu()
    ex = example.detach().cpu().float().contiguous()
    if ex.shape[0] < 2:  # trace with a batch of 2 so no shape gets specialised to 1
        ex = ex.expand(2, *ex.shape[1:]).contiguous()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (ex,), buf, dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as err:
        raise FastPathError(f"ONNX export of {type(model).__name__} failed: {err}") from err
    return buf.getvalue()


def _onnxruntime(model: nn.Module, example: torch.Tensor, threads: int) -> _Forward:
    try:
        import onnxruntime as ort  # optional dependency (cnnzoo[onnx])
    except ImportError as err:
        raise FastPathError("the onnxruntime backend needs the onnxruntime package "
                            "(pip install 'cnnzoo[onnx]')") from err
    if example.device.type != "cpu":
        raise InvalidArgumentError("the onnxruntime fast path runs on the CPU; "
                                   "use backend='compile' on CUDA")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # waiting threads sleep instead of spinning: on a shared CPU spinning costs more than it saves
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    session = ort.InferenceSession(export_onnx_bytes(model, example), so,
                                   providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().cpu().float().contiguous().numpy()
        return torch.from_numpy(session.run(None, {"input": arr})[0])

    return run
