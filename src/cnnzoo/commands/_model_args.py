"""Options shared by the verbs that build a model by name: `--pretrained` and
`--pretrained-tag tv|timm|TAG` (typer's parser has no option with an optional value)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import typer


def pretrained_option() -> Any:
    return typer.Option(False, "--pretrained",
                        help="for a model name: its published ImageNet weights (downloaded "
                             "once, verified, cached; `cnnzoo weights` lists them)")


def pretrained_tag_option() -> Any:
    return typer.Option(None, "--pretrained-tag", metavar="tv|timm|TAG",
                        help="which published weights (implies --pretrained): tv, timm or a "
                             "tag such as imagenet1k_v1")


def pretrained_choice(flag: bool, tag: str | None) -> bool | str:
    """What create_model(pretrained=...) gets: False, True or the tag."""
    return tag if tag else bool(flag)


@contextmanager
def as_model_file(checkpoint: Path, pretrained: bool | str) -> Iterator[Path]:
    """For verbs that read model files (eval): a model name with --pretrained becomes a
    temporary model file recording the weights' preprocessing and class names."""
    if not pretrained:
        yield checkpoint
        return
    import tempfile

    from ..checkpoint import save_model
    from ..predict import load_for_inference

    model, _ = load_for_inference(str(checkpoint), pretrained)
    with tempfile.TemporaryDirectory(prefix="cnnzoo-") as tmp:
        path = Path(tmp) / f"{checkpoint}.safetensors"
        save_model(path, model)
        yield path
