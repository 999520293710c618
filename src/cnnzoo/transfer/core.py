"""Transfer learning on any zoo model, through the model contract (seed 003, "How to use it"):

  1. activations of a layer as off-the-shelf features      extract_features, LinearProbe
  2. a new classifier on a frozen network                  prepare_transfer(freeze_until="all")
  3. fine-tuning the whole network, or from a named stage  prepare_transfer(freeze_until=NAME),
     with a lower learning rate for pre-trained layers     param groups (backbone_lr_mult)

Only `reset_classifier`, `classifier_name` and `feature_info` are used, so every family works
without per-family code. Stage names are module names (`model.named_modules()`); a stage
"from NAME on" means NAME and every parameter registered after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..bounds import check, check_optional
from ..contract import logits_of
from ..data.datasets import LabelledImages, load_split, parse_spec
from ..data.preprocess import Preprocess
from ..errors import InvalidArgumentError, closest
from .featfile import check_features


class _StopForward(Exception):
    pass


# -- data helpers (the data package's specs -> normalised tensors) ------------------------------

@dataclass
class ImageSet:
    """Images already preprocessed for a model (float, normalised), their labels and names:
    `LabelledImages` (data/datasets.py) held in memory; folder.FolderSet is its streamed twin."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    in_memory: ClassVar[bool] = True

    def __len__(self) -> int:
        return len(self.y)

    @property
    def labels(self) -> torch.Tensor:
        return self.y

    def select(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.x[index], self.y[index], self.classes)

    def limit(self, n: int) -> ImageSet:
        return self.select(torch.arange(min(n, len(self))))

    def batches(self, index_batches: Iterable[torch.Tensor],
                device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) for each batch of indices (as folder.FolderSet does)."""
        for i in index_batches:
            yield self.x[i].to(device), self.y[i].to(device)


def _in_batches(images: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of a tensor of images, or of prepared LabelledImages (ImageSet, FolderSet), in order."""
    if isinstance(images, torch.Tensor):
        yield from images.split(batch_size)
        return
    for x, _ in images.batches(torch.arange(len(images)).split(batch_size)):
        yield x


def select(y: torch.Tensor, classes: Sequence[int] | None = None, per_class: int | None = None,
           seed: int = 0) -> torch.Tensor:
    """Indices of the samples of `classes` (all if None), at most `per_class` of each, drawn
    with a fixed seed so every run (and the scratch baseline) sees the same small set."""
    keep = torch.arange(len(y))
    if classes is not None:
        keep = keep[torch.isin(y, torch.tensor(list(classes)))]
    if per_class is not None:
        g = torch.Generator().manual_seed(seed)
        keep = keep[torch.randperm(len(keep), generator=g)]
        chosen = []
        for c in (classes if classes is not None else y.unique().tolist()):
            chosen.append(keep[y[keep] == c][:per_class])
        keep = torch.cat(chosen).sort().values
    return keep


def load_image_set(spec: str | None, split: str, preprocess: Preprocess | Mapping[str, Any],
                   classes: Sequence[int] | None = None, per_class: int | None = None,
                   limit: int | None = None, seed: int = 0) -> ImageSet:
    """A `--data` split as normalised tensors at the model's input size. `preprocess` is a
    Preprocess or a model file's "preprocess" record.

    `classes` keeps only those labels and renumbers them 0..k-1 (digits 5-9 -> 0-4)."""
    pp = preprocess if isinstance(preprocess, Preprocess) else Preprocess.from_record(preprocess)
    if split not in ("train", "test"):
        raise InvalidArgumentError(f"split must be train or test, got {split!r}")
    per_class, limit = check_optional("per_class", per_class), check_optional("limit", limit)
    parsed = parse_spec(spec)
    data: LabelledImages = load_split(parsed, split)
    labels = data.labels
    names = list(data.classes)
    if classes is not None:
        bad = [c for c in classes if not 0 <= c < len(names)]
        if bad:
            raise InvalidArgumentError(f"--classes {bad} not in this data (labels 0..{len(names) - 1})")
    idx = select(labels, classes, per_class, seed)
    if limit is not None:
        idx = idx[:limit]
    if len(idx) == 0:
        raise InvalidArgumentError(f"no {split} images of classes {list(classes)} in {parsed}"
                                   if classes is not None else f"the {split} split of {parsed} is empty")
    y = labels[idx]
    if classes is not None:
        remap = {int(old): new for new, old in enumerate(classes)}
        y = torch.tensor([remap[int(v)] for v in y], dtype=torch.long)
        names = [names[i] for i in classes]
    if not data.in_memory:  # image files: streamed, decoded batch by batch
        from .folder import folder_set

        return folder_set(data, idx, pp, y, names)
    x = pp.prepare(data.images[idx].float() / 255.0)
    return ImageSet(x.contiguous(), y.long(), names)


# -- 1. features -----------------------------------------------------------------------------

def _resolve(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or not name:
        near = closest(name, [n for n in modules if n])
        stages = [f["module"] for f in getattr(model, "feature_info", [])]
        raise InvalidArgumentError(
            f"no layer named {name!r} in {getattr(model, 'model_name', type(model).__name__)}"
            + (f"; did you mean: {', '.join(near)}?" if near else "")
            + (f" (stages: {', '.join(stages)}; or 'pre_logits')" if stages else ""))
    return modules[name]


@torch.no_grad()
def extract_features(model: nn.Module, x: Any, layer: str | None = None,
                     pool: str = "avg", batch_size: int = 256) -> torch.Tensor:
    """Activations of `layer` for every image of `x` (a tensor, an ImageSet or a streamed
    FolderSet), one row per image.

    layer None or "pre_logits": the vector fed to the last linear layer (AlexNet/VGG fc7,
    ResNet's pooled features). Another name: that module's output; 4-D maps are reduced by
    `pool` ("avg", "max" over H and W, or "flatten"). The forward pass stops at the layer.
    """
    if pool not in ("avg", "max", "flatten"):
        raise InvalidArgumentError(f"pool must be avg, max or flatten, got {pool!r}")
    model = model.eval()
    device = next(model.parameters()).device
    feats = []
    target = None if layer in (None, "pre_logits") else _resolve(model, layer)
    for xb in _in_batches(x, batch_size):
        xb = xb.to(device)
        if target is None:
            f = model.forward_head(model.forward_features(xb), pre_logits=True)
        else:
            box: dict[str, torch.Tensor] = {}

            def hook(m, inp, out, box=box):  # this batch's box
                box["f"] = out if isinstance(out, torch.Tensor) else out[0]
                raise _StopForward

            h = target.register_forward_hook(hook)
            try:
                model(xb)
            except _StopForward:
                pass
            finally:
                h.remove()
            f = box["f"]
        if f.dim() == 4:
            f = f.mean((2, 3)) if pool == "avg" else f.amax((2, 3)) if pool == "max" else f.flatten(1)
        feats.append(f.flatten(1).float().cpu())
    return torch.cat(feats)


class LinearProbe(nn.Module):
    """Standardise features (with the training set's statistics), then one linear layer."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc((f - self.mean) / self.std)


def train_linear_probe(f: torch.Tensor, y: torch.Tensor, num_classes: int | None = None,
                       epochs: int = 100, lr: float = 1e-2, weight_decay: float = 1e-4,
                       batch_size: int = 256, seed: int = 0) -> LinearProbe:
    """A linear classifier on fixed features (AdamW, cross-entropy, minibatches)."""
    _check_schedule(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay)
    if len(f) != len(y) or len(f) == 0:
        raise InvalidArgumentError(f"need as many labels as feature rows, got {len(f)} and {len(y)}")
    check_features(f, y, num_classes)
    num_classes = num_classes or int(y.max()) + 1
    probe = LinearProbe(f.shape[1], num_classes)
    probe.mean.copy_(f.mean(0))
    probe.std.copy_(f.std(0).clamp_min(1e-6) if len(f) > 1 else torch.ones(f.shape[1]))
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        probe.fc.reset_parameters()
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        for idx in torch.randperm(len(f), generator=g).split(batch_size):
            loss = nn.functional.cross_entropy(probe(f[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return probe.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: Any, y: torch.Tensor | None = None,
             batch_size: int = 512) -> float:
    """Top-1 accuracy on images `x` with labels `y`, or on prepared LabelledImages `x`."""
    model.eval()
    device = next(model.parameters()).device
    if y is None:
        y = x.labels
    correct = 0
    for i, xb in zip(range(0, len(y), batch_size), _in_batches(x, batch_size)):
        out = model(xb.to(device))
        correct += int((logits_of(out).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(1, len(y))


# -- 2./3. freezing and fine-tuning --------------------------------------------------------------

def stage_names(model: nn.Module) -> list[str]:
    return [f["module"] for f in getattr(model, "feature_info", [])]


def freeze(model: nn.Module, until: str | None) -> list[str]:
    """Freeze parameters. until=None: nothing (fine-tune everything); "all": everything but
    the classifier (a new classifier on a frozen network); a module name: everything
    registered before that module (fine-tune from that stage on). Returns the frozen names."""
    for p in model.parameters():
        p.requires_grad_(True)
    if until is None:
        return []
    names = [n for n, _ in model.named_parameters()]
    if until == "all":
        head = getattr(model, "classifier_name", None)
        if head is None:
            raise InvalidArgumentError(f"{type(model).__name__} has no classifier_name")
        start = next((i for i, n in enumerate(names) if n.startswith(head + ".")), len(names))
    else:
        module = _resolve(model, until)
        first = next(iter(module.parameters()), None)
        if first is None:
            raise InvalidArgumentError(f"layer {until!r} has no parameters; name a stage with "
                                       f"weights ({', '.join(stage_names(model)) or 'see named_modules'})")
        ids = [id(p) for _, p in model.named_parameters()]
        start = ids.index(id(first))
    frozen = names[:start]
    params = dict(model.named_parameters())
    for n in frozen:
        params[n].requires_grad_(False)
    return frozen


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float = 0.1,
                 weight_decay: float = 5e-4) -> list[dict[str, Any]]:
    """Trainable parameters in two groups: the (new) classifier at `lr`, the pre-trained rest
    at `lr * backbone_lr_mult`. No weight decay on biases and norm parameters."""
    _check_schedule(lr=lr, backbone_lr_mult=backbone_lr_mult, weight_decay=weight_decay)
    head = getattr(model, "classifier_name", "") + "."
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((n.startswith(head), p.dim() > 1), []).append(p)
    out = []
    for (is_head, decay), ps in sorted(groups.items()):
        out.append({"params": ps, "lr": lr if is_head else lr * backbone_lr_mult,
                    "weight_decay": weight_decay if decay else 0.0,
                    "name": ("classifier" if is_head else "pretrained") + ("" if decay else "/no_wd")})
    return out


def prepare_transfer(model: nn.Module, num_classes: int, freeze_until: str | None = None,
                     lr: float = 0.01, backbone_lr_mult: float = 0.1) -> list[dict[str, Any]]:
    """New classifier for `num_classes`, freezing per `freeze_until`; returns param groups."""
    model.reset_classifier(num_classes)
    freeze(model, freeze_until)
    return param_groups(model, lr, backbone_lr_mult)


@dataclass
class FitResult:
    train_loss: float
    train_acc: float
    val_acc: float | None
    epochs: int
    history: list[dict[str, float]]


def fit_image_set(model: nn.Module, groups: Iterable[dict[str, Any]], train: ImageSet,
                  val: ImageSet | None = None, epochs: int = 20, batch_size: int = 64,
                  momentum: float = 0.9, seed: int = 0, augment: bool = True,
                  log: Callable[[dict[str, float]], None] | None = None) -> FitResult:
    """SGD (Nesterov) with a cosine schedule over the given param groups, on an in-memory set
    (small transfer sets), one epoch at a time through the trainer's engine
    (cnnzoo.train.engine.train_one_epoch: auxiliary-classifier losses, bf16 autocast and
    channels_last where the amp rule turns them on (CUDA, AMX CPUs, avx512_bf16 CPUs at batch
    >= 64), a NaN/inf loss stops the run naming the step).

    augment: random shifts of up to 2 pixels (padding 2, random crop), enough to keep a tiny
    labelled set from being memorised. Batch norms of frozen stages stay in eval mode."""
    from ..train.engine import StepContext, train_one_epoch, use_channels_last
    from ..train.recipes import Recipe

    _check_schedule(epochs=epochs, batch_size=batch_size, momentum=momentum)
    if len(train) == 0:
        raise InvalidArgumentError("no training images: the labelled set is empty")
    opt = torch.optim.SGD(list(groups), momentum=momentum, nesterov=True)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    recipe = Recipe(name="transfer", epochs=epochs, batch_size=batch_size, momentum=momentum,
                    nesterov=True, log_every=10**9)  # the schedule is ours (sched)
    ctx = StepContext(recipe=recipe, optimizer=opt, scheduler=sched, device=device,
                      prep=(lambda x, step: _shift(x, 2, g)) if augment else None,
                      channels_last=use_channels_last(recipe, device))
    hooks = _keep_frozen_bn_in_eval(model)
    history = []
    step = 0
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(train), generator=g).split(batch_size)
            batches = train.batches(order, device)
            m = train_one_epoch(model, batches, ctx, epoch, step)
            step = m["step"]
            row = {"epoch": epoch + 1, "loss": m["loss"], "train_acc": m["acc"]}
            if val is not None and log is not None:
                row["val_acc"] = accuracy(model, val)
            history.append(row)
            if log is not None:
                log(row)
    finally:
        for h in hooks:
            h.remove()
    last = history[-1]
    return FitResult(last["loss"], last["train_acc"],
                     accuracy(model, val) if val is not None else None, epochs, history)


def _keep_frozen_bn_in_eval(model: nn.Module) -> list:
    """Forward pre-hooks that put frozen batch norms in eval mode whatever model.train() did:
    a frozen stage must compute what it computed when pre-trained (running statistics)."""
    hooks = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters())
            if ps and not any(p.requires_grad for p in ps):
                hooks.append(m.register_forward_pre_hook(lambda mod, inp: mod.train(False) and None))
    return hooks


def _shift(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), value=float(x.amin()))
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
    return padded[:, :, dy:dy + h, dx:dx + w]


def _check_schedule(**values: float) -> None:
    """Epochs and batch sizes are positive integers; rates and factors finite and >= 0 (lr > 0)."""
    for name, v in values.items():
        if name in ("epochs", "batch_size"):
            check(name, v)
        elif not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
            rule = "> 0" if name == "lr" else ">= 0"
            raise InvalidArgumentError(f"{name} must be a finite number {rule}, got {v!r}")
