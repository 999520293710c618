"""Options shared by the verbs that build a model by name, declared once (a verb writes
`pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None`):
`--pretrained`, `--pretrained-tag tv|timm|TAG` (typer's parser has no option with an optional
value) and `--weights PATH` (the published file, fetched by hand)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

Pretrained = Annotated[bool, typer.Option(
    "--pretrained", help="for a model name: its published ImageNet weights (downloaded once, verified, "
                         "cached; `cnnzoo weights` lists them)")]
PretrainedTag = Annotated[Optional[str], typer.Option(
    "--pretrained-tag", metavar="tv|timm|TAG",
    help="which published weights (implies --pretrained): tv, timm or a tag such as imagenet1k_v1")]
Weights = Annotated[Optional[Path], typer.Option(
    "--weights", metavar="PATH", help="the published weights file, downloaded by hand (implies "
                                      "--pretrained): verified against the table, then cached")]


def pretrained_choice(flag: bool, tag: str | None, weights: Path | None = None,
                      name: str | Path | None = None) -> bool | str:
    """What create_model(pretrained=...) gets: False, True or the tag. With `weights`, that
    file is checked against the published digest and put in the cache first, so the model
    then loads offline exactly as after a download."""
    choice: bool | str = tag if tag else bool(flag)
    if weights is None:
        return choice
    from ..errors import InvalidArgumentError
    from ..hub import place, resolve

    if name is None or Path(name).exists():
        raise InvalidArgumentError("--weights PATH gives the published weights of a model NAME; "
                                   "a model file or run folder already holds its weights")
    place(resolve(str(name), choice or True), Path(weights))
    return choice or True


@contextmanager
def as_model_file(model_file: Path, pretrained: bool | str) -> Iterator[Path]:
    """For verbs that read model files (eval): a model name with --pretrained becomes a
    temporary model file recording the weights' preprocessing and class names."""
    if not pretrained:
        yield model_file
        return
    import tempfile

    from ..deploy.predict import load_for_inference
    from ..modelfile import save_model

    model, _ = load_for_inference(str(model_file), pretrained)
    with tempfile.TemporaryDirectory(prefix="cnnzoo-") as tmp:
        path = Path(tmp) / f"{model_file}.safetensors"
        save_model(path, model)
        yield path
