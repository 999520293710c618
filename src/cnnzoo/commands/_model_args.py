"""Options shared by the verbs that build a model by name: `--pretrained` and
`--pretrained-tag tv|timm|TAG` (typer's parser has no option with an optional value)."""

from __future__ import annotations

from typing import Any

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
