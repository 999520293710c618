"""One model against its reference: the timed inference and training steps, side by side.

Both sides get identical settings (device, precision, memory format, compile). ratio = ours /
reference throughput (>1 means ours is faster). Achieved multiply-add rate = MACs per image x
images/s; a training step counts 3x the forward MACs (forward, gradient w.r.t. activations,
gradient w.r.t. weights). On CUDA, MFU = 2 x that rate / the chip's dense bf16 peak.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch._dynamo
from torch import nn

from ..contract import classification_loss, logits_of
from ..errors import JobFailedError
from ..precision import autocast
from .cases import BenchError, Case, transfer_weights
from .machine import peak_flops
from .settings import Settings
from .timing import summarize, time_interleaved


def loss_of(out: Any, target: torch.Tensor) -> torch.Tensor:
    """The training loss both sides pay: main plus weighted auxiliary cross-entropy."""
    return classification_loss(out, target)[0]


class CompileFallbackError(JobFailedError):
    """A compiled side would have run eager code: its timing would not measure compiled code."""


def _compiled(model: nn.Module, s: Settings) -> nn.Module:
    """torch.compile with static shapes and in one graph. fullgraph turns a graph break into an
    error, and `_no_eager_fallback` turns dynamo's silent eager fallback at its recompile limit
    into one: either would otherwise time eager code against compiled code."""
    if not s.compile:
        return model
    if s.compile_backend != "inductor":
        return torch.compile(model, backend=s.compile_backend, dynamic=False, fullgraph=True)
    mode = s.compile_mode
    if mode is None and s.device.startswith("cuda"):
        mode = "reduce-overhead"  # CUDA graphs: our shapes are static
    return torch.compile(model, mode=mode, dynamic=False, fullgraph=True)


def _no_eager_fallback(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    def step() -> Any:
        try:
            with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
                return fn()
        except (torch._dynamo.exc.TorchDynamoException, torch._dynamo.exc.FailOnRecompileLimitHit) as err:
            raise CompileFallbackError(
                    f"{name}: torch.compile could not keep this side compiled "
                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                    "refusing to time eager code against compiled code") from err

    return step


def _input(batch: int, case: Case, s: Settings, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(batch, *case.input_size, generator=gen).to(s.device)
    return x.contiguous(memory_format=torch.channels_last) if s.channels_last else x


def _prepare(model: nn.Module, s: Settings) -> nn.Module:
    model = model.to(s.device)
    return model.to(memory_format=torch.channels_last) if s.channels_last else model


def _cudagraph_step(s: Settings) -> None:
    if s.compile and s.device.startswith("cuda"):
        torch.compiler.cudagraph_mark_step_begin()


def make_infer_step(model: nn.Module, x: torch.Tensor, s: Settings) -> Callable[[], Any]:
    """One inference call of `model` on `x` (eval, inference mode, the settings' precision)."""
    model.eval()
    fn = _compiled(model, s)

    def step() -> Any:
        _cudagraph_step(s)
        with torch.inference_mode(), autocast(s.device, s.precision == "bf16"):
            return fn(x)

    return step


def make_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    s: Settings) -> tuple[Callable[[], None], torch.Tensor]:
    """One SGD step (momentum, weight decay, fused kernel); the loss sum stays on the device."""
    model.train()
    fn = _compiled(model, s)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4, fused=True)
    total = torch.zeros((), device=s.device)

    def step() -> None:
        _cudagraph_step(s)
        with autocast(s.device, s.precision == "bf16"):
            loss = loss_of(fn(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total.add_(loss.detach().float())  # no .item(): no host sync inside the step

    return step, total


def compare(ours: Callable[[], Any], ref: Callable[[], Any], batch: int, s: Settings,
            macs_per_image: float | None, mac_factor: int = 1,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time two steps side by side; ratio = ours / reference images/s."""
    if s.compile:
        ours, ref = _no_eager_fallback("ours", ours), _no_eager_fallback("reference", ref)
    t = time_interleaved({"ours": ours, "reference": ref}, reps=s.reps, iters=s.iters,
                         warmup=s.warmup, device=s.device, progress=progress)
    o, r = summarize(t["ours"], batch), summarize(t["reference"], batch)
    res: dict[str, Any] = {"batch": batch, "ours": o, "reference": r,
                           "ratio": o["images_per_s"] / r["images_per_s"]}
    if macs_per_image:
        peak, _ = peak_flops(s.device, s.precision)
        for d in (o, r):
            rate = d["images_per_s"] * macs_per_image * mac_factor
            d["gmacs_per_s"] = rate / 1e9
            d["mfu"] = 2 * rate / peak if peak else None
    return res


def bench_case(case: Case, s: Settings, modes: Sequence[str] = ("infer", "train"),
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build both sides with the same weights, check they agree, then time them side by side."""
    if s.compile:
        # Every zoo model shares ZooModel.forward's code object, so dynamo's caches from earlier
        # cases would count against this one's recompile limit.
        torch._dynamo.reset()
    graphs_before = _graph_count()
    torch.manual_seed(0)
    ref = case.build_ref()
    ours = case.build_ours()
    matched = transfer_weights(ref, ours)
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(2, *case.input_size, generator=gen)
    ref.eval(), ours.eval()
    with torch.no_grad():
        want = logits_of(ref(probe))
        diff = (logits_of(ours(probe)) - want).abs().max().item()
    if not diff <= 1e-4 + 1e-4 * want.abs().max().item():  # not the same function: no ratio
        raise BenchError(f"{case.name} and {case.reference} disagree by {diff:.3g} on the same "
                         "input with the same weights; they are not the same architecture")
    out: dict[str, Any] = {"model": case.name, "reference": case.reference,
                           "input_size": list(case.input_size), "weights": matched,
                           "max_abs_diff": diff,
                           "params": sum(p.numel() for p in ours.parameters())}
    if case.macs is not None:
        macs, how = case.macs()
        out["macs"], out["macs_source"] = macs, how
    macs = out.get("macs")
    ours, ref = _prepare(ours, s), _prepare(ref, s)
    say = (lambda m: progress(f"{case.name} {m}")) if progress else None
    if "infer" in modes:
        x = _input(s.infer_batch, case, s, gen)
        out["infer"] = compare(make_infer_step(ours, x, s), make_infer_step(ref, x, s),
                               s.infer_batch, s, macs, 1, say)
    if "train" in modes:
        x = _input(s.train_batch, case, s, gen)
        y = torch.randint(0, case.num_classes, (s.train_batch,), generator=gen).to(s.device)
        step_o, loss_o = make_train_step(ours, x, y, s)
        step_r, loss_r = make_train_step(ref, x, y, s)
        out["train"] = compare(step_o, step_r, s.train_batch, s, macs, 3, say)
        # the same data, weights and optimiser: the two loss sums must agree closely
        out["train"]["loss_sums"] = [float(loss_o), float(loss_r)]
    if s.compile:
        # Two instances of one class may share a graph (parameters are graph inputs), so at
        # least one graph per mode; fullgraph and the recompile-limit check catch the rest.
        out["compiled_graphs"] = _graph_count() - graphs_before
        if out["compiled_graphs"] < len(modes):
            raise CompileFallbackError(
                f"{case.name}: {out['compiled_graphs']} graphs were compiled for {len(modes)} "
                "compiled modes; a side ran eager")
    return out


def _graph_count() -> int:
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])
