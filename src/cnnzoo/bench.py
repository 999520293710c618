"""Side-by-side speed benchmarks: our models against the reference, interleaved, in one run.

For each family's main model the reference is torchvision's model of the same architecture
(LeNet-5: the plain nn.Sequential a user would write), loaded with the same weights, and the
outputs are compared before anything is timed. Both sides get identical settings (device,
precision, memory format, compile) so the ratio measures the model code, not the settings.

Timing: after warm-up, repetitions alternate A B / B A (so drift from other processes on a shared
machine hits both sides alike) and each side's median is reported. ratio = ours / reference
throughput (>1 means ours is faster). Throughput needs no host sync inside a timed repetition:
losses accumulate on the device and one synchronise closes each repetition.

Achieved multiply-add rate = MACs per image x images/s; a training step counts 3x the forward
MACs (forward, gradient w.r.t. activations, gradient w.r.t. weights). On CUDA, MFU = 2 x that rate
/ the chip's dense bf16 peak (table below).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from .contract import classification_loss, logits_of
from .errors import CnnzooError, InvalidArgumentError
from .precision import autocast

# Each family's main model and torchvision's builder of the same architecture (None: a plain
# nn.Sequential, see _plain_lenet5). torchvision kwargs make its optional parts match ours.
MAIN_MODELS: tuple[tuple[str, str | None, dict[str, Any]], ...] = (
    ("lenet5_modern", None, {}),
    ("alexnet", "alexnet", {}),
    ("vgg16", "vgg16", {}),
    ("resnet50", "resnet50", {}),
    ("googlenet_tv", "googlenet", {"aux_logits": True, "init_weights": True}),
    ("mobilenet_v2", "mobilenet_v2", {}),
    ("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", {}),
    ("densenet121", "densenet121", {}),
    ("inception_v3", "inception_v3", {"aux_logits": True, "init_weights": True}),
    ("squeezenet1_0", "squeezenet1_0", {}),
)
# --quick: models that together fit the one-minute budget on a 2-core CPU.
QUICK_MODELS = ("lenet5_modern", "alexnet", "resnet50", "mobilenet_v2", "shufflenet_v2_x1_0")

# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, from the vendors' data sheets; matched
# against torch.cuda.get_device_name() in order, first hit wins.
PEAK_BF16_FLOPS: tuple[tuple[str, float, str], ...] = (
    ("H100 PCIe", 756e12, "H100 PCIe bf16 dense"),
    ("H100 NVL", 835e12, "H100 NVL bf16 dense"),
    ("H100", 989e12, "H100 SXM bf16 dense"),
    ("H200", 989e12, "H200 bf16 dense"),
    ("GH200", 989e12, "GH200 bf16 dense"),
    ("A100", 312e12, "A100 bf16 dense"),
    ("L40S", 362e12, "L40S bf16 dense"),
    ("L4", 121e12, "L4 bf16 dense"),
)


# Issue 8's floors on an H100 (synthetic data), images/s of ResNet-50 with the GPU fast path.
GPU_FLOORS = {("resnet50", "train"): 3000.0, ("resnet50", "infer"): 10000.0}


class BenchError(CnnzooError):
    """A benchmark could not be set up (e.g. the reference's weights do not fit ours)."""


# ---------------------------------------------------------------------------------------------
# settings and cases


@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None  # None: "reduce-overhead" (CUDA graphs) on CUDA, else default
    infer_batch: int = 32
    train_batch: int = 32
    warmup: int = 2
    reps: int = 6  # per side; ABBA-interleaved
    iters: int = 1  # calls per timed repetition
    threads: int | None = 2

    def check(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise InvalidArgumentError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidArgumentError("device cuda was asked for but torch sees no CUDA device")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise InvalidArgumentError(f"device must be cpu or cuda[:N], got {self.device!r}")
        for name in ("infer_batch", "train_batch", "reps", "iters"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise InvalidArgumentError(f"warmup must be >= 0, got {self.warmup}")


@dataclass
class Case:
    """One architecture: how to build ours and the reference, and its native input."""

    name: str
    reference: str  # what the reference is, for the report
    build_ours: Callable[[], nn.Module]
    build_ref: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    num_classes: int = 1000
    macs: Callable[[], tuple[int, str]] | None = None  # -> (MACs per image, how counted)


def _plain_lenet5(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """LeNet-5's layer sizes as the plain nn.Sequential found in tutorials (ReLU, max pool)."""
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
    )


def torchvision_builder(tv_name: str, num_classes: int = 1000, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, tv_name)(weights=None, num_classes=num_classes, **kwargs)

    return build


def zoo_case(name: str, tv_name: str | None, tv_kwargs: dict[str, Any] | None = None) -> Case:
    """The case for registered model `name` against torchvision's `tv_name`."""
    from .registry import create_model, get_entry

    entry = get_entry(name)
    num_classes = getattr(entry, "num_classes", 10 if name.startswith("lenet") else 1000)
    in_chans = entry.input_size[0]

    def build_ours() -> nn.Module:
        return create_model(name, num_classes=num_classes, in_chans=in_chans)

    if tv_name is None:
        build_ref = lambda: _plain_lenet5(num_classes, in_chans)  # noqa: E731
        ref = "plain nn.Sequential (LeNet-5 sizes)"
    else:
        build_ref = torchvision_builder(tv_name, num_classes, **(tv_kwargs or {}))
        ref = f"torchvision.models.{tv_name}"
    return Case(name, ref, build_ours, build_ref, tuple(entry.input_size), num_classes,
                macs=lambda: model_macs(name, build_ours, entry.input_size))


def main_cases(names: Iterable[str] | None = None) -> tuple[list[Case], list[dict[str, str]]]:
    """Cases for the main models that are registered; the rest come back as skipped, with why."""
    from .registry import list_models

    table = {n: (tv, kw) for n, tv, kw in MAIN_MODELS}
    wanted = list(names) if names is not None else list(table)
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise InvalidArgumentError(
            f"no benchmark case for {', '.join(unknown)}; cases exist for: {', '.join(table)}")
    registered = set(list_models())
    cases, skipped = [], []
    for n in wanted:
        if n in registered:
            cases.append(zoo_case(n, *table[n]))
        else:
            skipped.append({"model": n, "reason": "not registered in this checkout"})
    return cases, skipped


# ---------------------------------------------------------------------------------------------
# cost


def model_macs(name: str | None, build: Callable[[], nn.Module],
               input_size: Sequence[int]) -> tuple[int, str]:
    """Multiply-adds per image: the analyzer's total (the lecture's rules) where it is present,
    else torch's FlopCounterMode on the meta device / 2 (convolutions and matmuls only)."""
    if name is not None:
        try:
            from .analysis import analyze
        except ImportError:
            pass
        else:
            return int(analyze(name, tuple(input_size)).total_macs), "cnnzoo.analysis"
    return flop_counter_macs(build, input_size), "FlopCounterMode/2"


def flop_counter_macs(build: Callable[[], nn.Module], input_size: Sequence[int]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build().eval()
        x = torch.empty(1, *input_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def peak_flops(device: str) -> tuple[float | None, str | None]:
    """Dense bf16 peak of the CUDA device in FLOP/s, or (None, None) where unknown / on CPU."""
    if not device.startswith("cuda"):
        return None, None
    gpu = torch.cuda.get_device_name(torch.device(device))
    for key, peak, label in PEAK_BF16_FLOPS:
        if key in gpu:
            return peak, label
    return None, None


# ---------------------------------------------------------------------------------------------
# weights and outputs


def transfer_weights(src: nn.Module, dst: nn.Module) -> str:
    """Copy every parameter and buffer of src into dst; returns how they were matched.

    By name where the names agree; else by position, which needs the two state dicts to hold the
    same shapes in the same order (true for the same architecture written in the same order).
    """
    s, d = src.state_dict(), dst.state_dict()
    if s.keys() == d.keys() and all(s[k].shape == d[k].shape for k in s):
        dst.load_state_dict(s)
        return "by name"
    s_items, d_items = list(s.items()), list(d.items())
    if len(s_items) != len(d_items):
        raise BenchError(
            f"cannot load the reference's weights: {len(s_items)} tensors vs our {len(d_items)}")
    for (sk, sv), (dk, dv) in zip(s_items, d_items):
        if sv.shape != dv.shape:
            raise BenchError(
                f"cannot load the reference's weights by position: {sk} {tuple(sv.shape)} "
                f"vs our {dk} {tuple(dv.shape)}")
    dst.load_state_dict({dk: sv for (dk, _), (_, sv) in zip(d_items, s_items)})
    return "by position"


def loss_of(out: Any, target: torch.Tensor) -> torch.Tensor:
    """The training loss both sides pay: main plus weighted auxiliary cross-entropy."""
    return classification_loss(out, target)[0]


# ---------------------------------------------------------------------------------------------
# the steps that are timed


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def _compiled(model: nn.Module, s: Settings) -> nn.Module:
    if not s.compile:
        return model
    mode = s.compile_mode
    if mode is None and s.device.startswith("cuda"):
        mode = "reduce-overhead"  # CUDA graphs: our shapes are static
    return torch.compile(model, mode=mode)


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


# ---------------------------------------------------------------------------------------------
# timing


def time_interleaved(steps: dict[str, Callable[[], Any]], *, reps: int, iters: int = 1,
                     warmup: int = 1, device: str = "cpu",
                     progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each step: `reps` repetitions per step, in ABBA order, each
    repetition `iters` calls closed by one device sync."""
    names = list(steps)
    for _ in range(warmup):
        for n in names:
            steps[n]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            for _ in range(iters):
                steps[n]()
            _sync(device)
            times[n].append((time.perf_counter() - t0) / iters)
        if progress:
            progress(f"rep {r + 1}/{reps}")
    return times


def _summary(times: list[float], batch: int) -> dict[str, Any]:
    med = statistics.median(times)
    return {"median_ms": med * 1e3, "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
            "images_per_s": batch / med}


def compare(ours: Callable[[], Any], ref: Callable[[], Any], batch: int, s: Settings,
            macs_per_image: float | None, mac_factor: int = 1,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time two steps side by side; ratio = ours / reference images/s."""
    t = time_interleaved({"ours": ours, "reference": ref}, reps=s.reps, iters=s.iters,
                         warmup=s.warmup, device=s.device, progress=progress)
    o, r = _summary(t["ours"], batch), _summary(t["reference"], batch)
    res: dict[str, Any] = {"batch": batch, "ours": o, "reference": r,
                           "ratio": o["images_per_s"] / r["images_per_s"]}
    if macs_per_image:
        peak, _ = peak_flops(s.device)
        for side, d in (("ours", o), ("reference", r)):
            rate = d["images_per_s"] * macs_per_image * mac_factor
            d["gmacs_per_s"] = rate / 1e9
            d["mfu"] = 2 * rate / peak if peak else None
    return res


# ---------------------------------------------------------------------------------------------
# the runs


def bench_case(case: Case, s: Settings, modes: Sequence[str] = ("infer", "train"),
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build both sides with the same weights, check they agree, then time them side by side."""
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
    return out


def machine_info(device: str = "cpu") -> dict[str, Any]:
    import torchvision

    info: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "platform": platform.platform(),
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": device, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }
    with contextlib.suppress(OSError, AttributeError):
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    with contextlib.suppress(ImportError):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
        peak, label = peak_flops(device)
        info["peak_flops"], info["peak_source"] = peak, label
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def full_settings(device: str = "cpu") -> Settings:
    """A full run: the GPU floors' batch on CUDA; on a CPU batches that keep every model at its
    native size within minutes (Inception v3 trains at ~17 GMAC per image and step)."""
    if device.startswith("cuda"):
        return Settings(device=device, infer_batch=256, train_batch=256, warmup=3, reps=6, iters=10)
    return Settings(device=device, infer_batch=8, train_batch=4, warmup=1, reps=4, iters=1)


def quick_settings(device: str = "cpu") -> Settings:
    if device.startswith("cuda"):
        return Settings(device=device, infer_batch=64, train_batch=32, warmup=2, reps=4, iters=5)
    return Settings(device=device, infer_batch=1, train_batch=2, warmup=1, reps=4, iters=1)


def run(cases: Sequence[Case] | None = None, settings: Settings | None = None, *,
        models: Iterable[str] | None = None, quick: bool = False,
        modes: Sequence[str] = ("infer", "train"), fastpath: bool = True, loop: bool = True,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-ready dict (machine, settings, per-model results, ...)."""
    s = settings or (quick_settings() if quick else full_settings())
    s.check()
    threads_before = torch.get_num_threads()
    if s.threads and s.device == "cpu":
        torch.set_num_threads(s.threads)
    try:
        return _run(cases, s, models, quick, modes, fastpath, loop, progress)
    finally:
        torch.set_num_threads(threads_before)  # a library call leaves the process as it was


def _run(cases, s: Settings, models, quick: bool, modes, fastpath: bool, loop: bool,
         progress) -> dict[str, Any]:
    skipped: list[dict[str, str]] = []
    if cases is None:
        cases, skipped = main_cases(models if models is not None else (QUICK_MODELS if quick else None))
    started, cpu_started = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"machine": machine_info(s.device), "settings": vars(s).copy(),
                              "quick": quick, "models": [], "skipped": skipped}
    for case in cases:
        if progress:
            progress(f"{case.name}: building and checking against {case.reference}")
        try:
            result["models"].append(bench_case(case, s, modes, progress))
        except BenchError as err:
            result["skipped"].append({"model": case.name, "reason": str(err)})
    if s.device.startswith("cuda"):
        result["floors"] = [
            {"model": r["model"], "mode": mode, "floor_images_per_s": floor,
             "images_per_s": r[mode]["ours"]["images_per_s"],
             "met": r[mode]["ours"]["images_per_s"] >= floor, "mfu": r[mode]["ours"].get("mfu")}
            for r in result["models"] for (name, mode), floor in GPU_FLOORS.items()
            if r["model"] == name and mode in r]
    if fastpath:
        from .fastpath import bench_fastpath

        result["fastpath"] = bench_fastpath(s, quick=quick, progress=progress)
    if loop:
        result["loop"] = bench_loop(s, quick=quick, progress=progress)
    result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = time.process_time() - cpu_started  # this process's CPU time: load-independent
    return result


class _PerSampleDataset(torch.utils.data.Dataset):
    """The reference loop's data: a map-style dataset transforming one image at a time on the
    host (uint8 -> float, pad/resize, normalise), as torchvision's datasets and transforms do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, prep: Any) -> None:
        self.images, self.labels, self.prep = images, labels, prep

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.prep.eval_batch(self.images[i: i + 1])[0], int(self.labels[i])


def bench_loop(s: Settings, quick: bool = False, model_name: str = "lenet5_modern",
               data: str = "embedded", recipe_name: str = "lenet", max_images: int | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Our training loop (cnnzoo.train.engine: data on the device, batched preprocessing, no
    host sync per step) against a plain loop shaped like torchvision's reference train.py
    (DataLoader over a per-sample dataset, `.item()` of loss and accuracy every step), on the
    same model, initial weights, data, batch size and optimiser. A third arm runs our loop on
    synthetic batches already on the device: real/synthetic shows what the data costs."""
    try:
        from .data.datasets import load_split, parse_spec, shard_indices, tensor_batches
        from .data.preprocess import fit_input
        from .train.engine import StepContext, build_optimizer, build_scheduler, train_one_epoch
        from .train.recipes import get_recipe
    except ImportError as err:
        return {"skipped": f"the training engine is not in this checkout ({err})"}
    import copy

    from .registry import create_model, get_entry, list_models

    if model_name not in list_models():
        return {"skipped": f"{model_name} is not registered in this checkout"}
    device = torch.device(s.device)
    recipe = get_recipe(recipe_name)
    bs = recipe.batch_size
    train = load_split(parse_spec(data), "train")
    n = min(len(train), max_images or (1600 if quick else 6400))
    n -= n % bs
    train = train.subset(n)
    entry = get_entry(model_name)
    mean, std = train.stats()
    prep = fit_input(model_name, entry.input_size, train.shape, mean, std)
    steps = n // bs

    torch.manual_seed(0)
    base = create_model(model_name, num_classes=len(train.classes), in_chans=prep.in_chans)
    models = {k: copy.deepcopy(base).to(device) for k in ("ours", "reference", "synthetic")}
    opts = {k: build_optimizer(m, recipe, device) for k, m in models.items()}
    state = {"epoch": 0, "step": 0, "synth_step": 0, "ref_acc": 0.0, "ours_acc": 0.0}

    # -- ours: the engine on device-resident data, preprocessing batched on the device
    train_dev = train.to(device)
    total = steps * (2 * s.reps + 2 * max(s.warmup, 1))
    sched = build_scheduler(opts["ours"], recipe, steps, total)

    def prep_train(x: torch.Tensor, step: int) -> torch.Tensor:
        g = torch.Generator(device=device)
        g.manual_seed(step)
        return prep.train_batch(x, recipe.augment, g)

    ctx = StepContext(recipe=recipe, optimizer=opts["ours"], scheduler=sched, device=device,
                      prep=prep_train)

    def ours_epoch() -> None:
        idx = shard_indices(n, bs, state["epoch"], 0, True, 0, 1, True)
        m = train_one_epoch(models["ours"], tensor_batches(train_dev, idx), ctx, state["epoch"],
                            state["step"])
        state["epoch"] += 1
        state["step"] = m["step"]
        state["ours_acc"] = m["acc"]

    # -- synthetic: the same engine on one normalised random batch that never leaves the device
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(bs, prep.in_chans, *prep.size, generator=gen).to(device)
    ys = torch.randint(0, len(train.classes), (bs,), generator=gen).to(device)
    ctx_s = StepContext(recipe=recipe, optimizer=opts["synthetic"],
                        scheduler=build_scheduler(opts["synthetic"], recipe, steps, total),
                        device=device)

    def synthetic_epoch() -> None:
        m = train_one_epoch(models["synthetic"], ((xs, ys) for _ in range(steps)), ctx_s, 0,
                            state["synth_step"])
        state["synth_step"] = m["step"]

    # -- reference: torchvision's references/classification/train.py, reduced to its loop
    loader = torch.utils.data.DataLoader(_PerSampleDataset(train.images, train.labels, prep),
                                         batch_size=bs, shuffle=True, drop_last=True,
                                         num_workers=0, pin_memory=device.type == "cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    ref_sched = torch.optim.lr_scheduler.StepLR(opts["reference"], step_size=30, gamma=0.1)

    def reference_epoch() -> None:
        model, optimizer = models["reference"], opts["reference"]
        model.train()
        correct = seen = 0.0
        for image, target in loader:
            image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
            output = model(image)
            loss = criterion(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            top5 = output.topk(5, 1).indices  # train.py logs acc1 and acc5 each step
            acc1 = (top5[:, 0] == target).float().sum()
            acc5 = (top5 == target[:, None]).any(1).float().sum()
            _ = loss.item(), acc5.item()  # MetricLogger.update(...) reads them on the host
            correct += acc1.item()
            seen += len(target)
        ref_sched.step()
        state["ref_acc"] = correct / max(seen, 1)

    say = (lambda m: progress(f"training loop {m}")) if progress else None
    t = time_interleaved({"ours": ours_epoch, "reference": reference_epoch,
                          "synthetic": synthetic_epoch}, reps=s.reps, iters=1,
                         warmup=max(s.warmup, 1), device=s.device, progress=say)
    o, r, y = (_summary(t[k], n) for k in ("ours", "reference", "synthetic"))
    return {"model": model_name, "data": f"{data} (first {n} training images)",
            "recipe": recipe_name, "batch": bs, "steps_per_epoch": steps,
            "reference_loop": "torchvision references/classification/train.py shape: DataLoader "
                              "(per-sample transforms, num_workers=0), .item() per step",
            "ours": o, "reference": r, "synthetic": y,
            "ratio": o["images_per_s"] / r["images_per_s"],
            "real_vs_synthetic": o["images_per_s"] / y["images_per_s"],
            "train_acc_last_epoch": {"ours": state["ours_acc"], "reference": state["ref_acc"]}}


# ---------------------------------------------------------------------------------------------
# text report


def format_report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"machine: {m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']} "
             f"({m['torch_threads']} threads), torchvision {m['torchvision']}, device {m['device']}"
             + (f" ({m['gpu']})" if m.get("gpu") else "")
             + (f", load {m['loadavg']} -> {m.get('loadavg_end')}" if m.get("loadavg") else "")]
    st = res["settings"]
    lines.append(f"settings: {st['precision']}, channels_last={st['channels_last']}, "
                 f"compile={st['compile']}, warmup {st['warmup']}, {st['reps']} reps x "
                 f"{st['iters']} iters per side, ABBA order, medians")
    head = f"{'model':20s} {'mode':5s} {'batch':>5s} {'ours img/s':>11s} {'ref img/s':>10s} " \
           f"{'ratio':>6s} {'GMAC/s':>8s}"
    if any(r.get(k, {}).get("ours", {}).get("mfu") for r in res["models"] for k in ("infer", "train")):
        head += f" {'MFU':>6s}"
    lines += ["", head]
    for r in res["models"]:
        for mode in ("infer", "train"):
            if mode not in r:
                continue
            c = r[mode]
            o, f = c["ours"], c["reference"]
            row = (f"{r['model']:20s} {mode:5s} {c['batch']:5d} {o['images_per_s']:11.1f} "
                   f"{f['images_per_s']:10.1f} {c['ratio']:6.2f} {o.get('gmacs_per_s', 0):8.1f}")
            if o.get("mfu") is not None:
                row += f" {100 * o['mfu']:5.1f}%"
            lines.append(row)
    for r in res["models"]:
        lines.append(f"  {r['model']}: vs {r['reference']}, weights {r['weights']}, "
                     f"max |diff| {r['max_abs_diff']:.2e}, {r.get('macs', 0) / 1e6:.1f} MMAC/img "
                     f"({r.get('macs_source', '-')})")
    for sk in res.get("skipped", []):
        lines.append(f"  skipped {sk['model']}: {sk['reason']}")
    for f in res.get("floors", []):
        lines.append(f"  floor {f['model']} {f['mode']}: {f['images_per_s']:,.0f} img/s vs "
                     f"{f['floor_images_per_s']:,.0f} -> {'met' if f['met'] else 'NOT met'}"
                     + (f", MFU {100 * f['mfu']:.1f}%" if f.get("mfu") else ""))
    fp = res.get("fastpath")
    if fp:
        lines += ["", "fast path (inference, ours) vs torchvision eager, same weights:"]
        for row in fp.get("rows", []):
            lines.append(f"  {row['model']} batch {row['batch']:3d} "
                         f"{row['backend'] + '/' + row['precision']:16s} "
                         f"{row['fast_images_per_s']:8.1f} img/s vs {row['eager_images_per_s']:8.1f}"
                         f"  x{row['speedup']:.2f}  max |diff| {row['max_abs_diff']:.1e}")
        if fp.get("skipped"):
            lines.append(f"  skipped: {fp['skipped']}")
    lp = res.get("loop")
    if lp:
        lines += ["", "training loop:"]
        if "skipped" in lp:
            lines.append(f"  skipped: {lp['skipped']}")
        else:
            lines.append(f"  {lp['model']} on {lp['data']}, recipe {lp['recipe']}, batch "
                         f"{lp['batch']}: ours {lp['ours']['images_per_s']:.0f} img/s, plain "
                         f"loop {lp['reference']['images_per_s']:.0f} img/s, ratio {lp['ratio']:.2f}")
            lines.append(f"  ours on synthetic on-device batches "
                         f"{lp['synthetic']['images_per_s']:.0f} img/s: real data runs at "
                         f"{100 * lp['real_vs_synthetic']:.0f}% of the synthetic rate")
    lines.append(f"\nwall time {res['wall_s']:.1f} s, CPU time {res.get('cpu_s', 0):.1f} s")
    return "\n".join(lines)


def settings_from(*, quick: bool = False, device: str = "cpu", precision: str | None = None,
                  channels_last: bool | None = None, compile: bool | None = None,
                  batch: int | None = None, reps: int | None = None,
                  threads: int | None = 2) -> Settings:
    """Settings from command-line options. Unset options take the device's default: on CUDA
    the fast path (bf16 autocast, channels_last, torch.compile with CUDA graphs), on the CPU
    plain float32 eager (what a user runs by default)."""
    base = quick_settings(device) if quick else full_settings(device)
    cuda = device.startswith("cuda")
    kw: dict[str, Any] = dict(vars(base))
    kw.update(precision=precision or ("bf16" if cuda else "fp32"),
              channels_last=cuda if channels_last is None else channels_last,
              compile=cuda if compile is None else compile, threads=threads)
    if batch is not None:
        kw.update(infer_batch=batch, train_batch=batch)
    if reps is not None:
        kw["reps"] = reps
    s = Settings(**kw)
    s.check()
    return s
