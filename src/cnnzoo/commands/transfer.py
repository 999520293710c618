"""`cnnzoo features`, `cnnzoo linear-probe`, `cnnzoo finetune`: transfer learning."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..data.kinds import DEFAULT_KIND, spec_help
from ..errors import InvalidArgumentError
from ..results import pct
from ._common import Format, console, print_json
from ._lazy import verb
from ._model_args import Pretrained, PretrainedTag, Weights, pretrained_choice
from ._options import FormatOpt, JsonOpt, OverwriteOpt, bounded, check_out

if TYPE_CHECKING:  # the CLI imports its heavy modules only when a verb runs
    from torch import nn

    from ..data.preprocess import Preprocess

DATA_HELP = spec_help()
CLASSES_HELP = "keep only these labels, renumbered from 0 (e.g. 5-9 or 5,6,7,8,9)"


def parse_classes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from ..bounds import check

    out: list[int] = []
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        try:
            ends = [int(a), int(b if sep else a)]
        except ValueError:
            raise InvalidArgumentError(f"--classes {text!r}: write labels like 5-9 or 5,6,7") from None
        lo, hi = (check("label", v, f"--classes {text!r}: label") for v in ends)
        out += list(range(lo, hi + 1))  # both ends bounded before the range is made
    if len(set(out)) != len(out) or len(out) < 2:
        raise InvalidArgumentError(f"--classes {text!r}: need at least two distinct labels")
    return out


def _fresh_preprocess(model: nn.Module, data: str | None) -> Preprocess:
    """For a model name (no model file yet): fit the data to the model as the trainer does
    (cnnzoo.data.preprocess.fit_input: MNIST 28x28 zero-padded into LeNet's 32x32, the
    data's own mean/std), so that the model file written afterwards records it."""
    from ..data.datasets import load_split, parse_spec
    from ..data.preprocess import fit_input
    from ..deploy.predict import default_preprocess
    from ..registry import get_entry

    split = load_split(parse_spec(data), "train")
    if not split.in_memory:
        return default_preprocess(model)
    mean, std = split.stats()
    native = get_entry(model.model_name).input_size
    return fit_input(model.model_name, native, split.shape, mean, std)


def features_cmd(
    model_file: str = typer.Argument(..., help="model file (or a model name: random weights)"),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    layer: str = typer.Option("pre_logits", "--layer", "-l",
                              help="module name (e.g. classifier.4 = AlexNet fc7), or "
                                   "pre_logits: the input of the last linear layer"),
    out: Path = typer.Option(..., "--out", "-o", help="features file (.safetensors)"), overwrite: OverwriteOpt = False,
    split: str = typer.Option("train", help="train or test"),
    classes: Optional[str] = typer.Option(None, help=CLASSES_HELP),
    per_class: Optional[int] = typer.Option(None, help="at most N images per class (seeded)"),
    limit: Optional[int] = typer.Option(None, help="at most N images"),
    pool: str = typer.Option("avg", help="reduce 4-D maps: avg, max or flatten"),
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
    pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None,
) -> None:
    """Write the activations of a layer for a dataset (features + labels, safetensors)."""
    from ..deploy.predict import get_preprocess, load_for_inference
    from ..transfer.core import extract_features, load_image_set
    from ..transfer.featfile import save_features

    check_out(out, inputs=[model_file], overwrite=overwrite)
    model, record = load_for_inference(model_file, pretrained_choice(pretrained, pretrained_tag, weights, model_file))
    pp = get_preprocess(record, model)
    ds = load_image_set(data, split, pp, parse_classes(classes), per_class, limit)
    f = extract_features(model, ds, layer, pool=pool)
    meta = {"model": record.get("model"), "model_file": str(model_file), "layer": layer,
            "pool": pool, "data": data or DEFAULT_KIND, "split": split, "classes": ds.classes}
    save_features(out, f, ds.y, overwrite=overwrite, **meta)
    info = {"out": str(out), "shape": list(f.shape), **meta}
    if fmt is Format.json:
        print_json(info)
    else:
        console.print(f"wrote {out}: {f.shape[0]} x {f.shape[1]} features of {layer}",
                      highlight=False)


def linear_probe_cmd(
    train: Path = typer.Argument(..., help="features file from `cnnzoo features`"),
    val: Optional[Path] = typer.Option(None, "--val", help="features file to evaluate on"),
    epochs: int = typer.Option(100, help="passes over the features", callback=bounded("epochs")),
    lr: float = typer.Option(0.01, help="AdamW learning rate"),
    weight_decay: float = typer.Option(1e-4),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="save the probe (.safetensors)"),
    overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Train a linear classifier on extracted features; print train/val accuracy."""
    from ..transfer.core import accuracy, train_linear_probe
    from ..transfer.featfile import load_features, save_probe

    if out is not None:
        check_out(out, inputs=[train, val], overwrite=overwrite)
    f, y, meta = load_features(train)
    probe = train_linear_probe(f, y, len(meta.get("classes") or []) or None, epochs=epochs,
                               lr=lr, weight_decay=weight_decay)
    res = {"train": str(train), "n_train": len(y), "dim": f.shape[1],
           "train_acc_pct": pct(accuracy(probe, f, y))}
    if val is not None:
        fv, yv, meta_v = load_features(val)
        if fv.shape[1] != f.shape[1]:
            raise InvalidArgumentError(f"{val} has {fv.shape[1]} features, {train} {f.shape[1]}")
        res.update(val=str(val), n_val=len(yv), val_acc_pct=pct(accuracy(probe, fv, yv)))
    if out is not None:
        save_probe(out, probe, {**meta, **res}, inputs=[train, val], overwrite=overwrite)
        res["out"] = str(out)
    if fmt is Format.json:
        print_json(res)
        return
    line = f"linear probe on {res['n_train']} x {res['dim']} features: train accuracy {res['train_acc_pct']:.2f}%"
    if val is not None:
        line += f", val accuracy {res['val_acc_pct']:.2f}% ({res['n_val']} samples)"
    console.print(line, highlight=False)


FreezeUntil = Annotated[Optional[str], typer.Option(
    "--freeze-until", help="'all' (train only a new classifier), or a module name: train from that stage on; "
    "default: the whole network")]
Scratch = Annotated[bool, typer.Option("--scratch", help="baseline: the same architecture from random weights")]


def finetune_cmd(
    model_file: str = typer.Argument(..., help="pre-trained model file"),
    data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
    classes: Optional[str] = typer.Option(None, help=CLASSES_HELP),
    per_class: Optional[int] = typer.Option(None, help="labelled images per class (seeded)"),
    freeze_until: FreezeUntil = None, scratch: Scratch = False,
    epochs: int = typer.Option(30),
    lr: float = typer.Option(0.05, help="learning rate of the new classifier"),
    backbone_lr_mult: float = typer.Option(0.1, help="pre-trained layers get lr x this"),
    batch_size: int = typer.Option(32), seed: int = typer.Option(0, callback=bounded("seed")),
    augment: bool = typer.Option(True, help="random shifts of up to 2 pixels"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="model file to write"),
    overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
    pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None,
) -> None:
    """Fine-tune a pre-trained model on new classes (or train it from scratch, --scratch),
    evaluated on the test split of the same classes."""
    from ..deploy.predict import get_preprocess, load_for_inference
    from ..transfer.core import load_image_set
    from ..transfer.finetune import FinetuneSettings, finetune

    if out is not None:
        check_out(out, inputs=[model_file], overwrite=overwrite)
    model, record = load_for_inference(model_file, pretrained_choice(pretrained, pretrained_tag, weights, model_file))
    pp = _fresh_preprocess(model, data) if record.get("untrained") else get_preprocess(record, model)
    cls = parse_classes(classes)
    train = load_image_set(data, "train", pp, cls, per_class, seed=seed)
    test = load_image_set(data, "test", pp, cls)
    settings = FinetuneSettings(epochs=epochs, lr=lr, backbone_lr_mult=backbone_lr_mult, batch_size=batch_size,
                                freeze_until=freeze_until, augment=augment, scratch=scratch, seed=seed)
    ft = finetune(model, train, test, settings)
    res = ft.as_dict(str(model_file), len(train), len(test))
    if out is not None:
        ft.save(out, pp.to_record(), {"spec": data or DEFAULT_KIND, "classes": cls, "per_class": per_class},
                source=str(model_file), overwrite=overwrite)
        res["out"] = str(out)
    if fmt is Format.json:
        return print_json(res)
    console.print(f"{res['mode']}: {len(train)} labelled images, {ft.trainable_params:,} trainable "
                  f"params -> test accuracy {res['test_acc_pct']:.2f}% on {len(test)} images", highlight=False)


def register(app: typer.Typer) -> None:
    verb(app, "features", features_cmd)
    verb(app, "linear-probe", linear_probe_cmd)
    verb(app, "finetune", finetune_cmd)
