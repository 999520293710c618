"""`cnnzoo serve`: the web app of docs/serve.md on a local port (the `serve` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CnnzooError
from ._lazy import verb

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class MissingExtraError(CnnzooError):
    pass


def _server_modules() -> tuple:
    try:
        import uvicorn

        from ..serve import create_app
    except ImportError as err:
        raise MissingExtraError(f"`cnnzoo serve` needs the web extra ({err.name} is missing): "
                                "pip install 'cnnzoo[serve]'") from None
    return uvicorn, create_app


def register(app: typer.Typer) -> None:
    verb(app, "serve", serve_cmd)


def serve_cmd(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one)")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on; anything but 127.0.0.1/localhost exposes "
                                      "the app to your network")] = "127.0.0.1",
    runs: Annotated[Path, typer.Option(help="training runs to show; model files are only ever read from "
                                       "under this folder")] = Path("runs"),
) -> None:
    """The zoo in a browser: sortable model table and bubble chart, per-layer cost tables
    with each layer's arithmetic, comparisons, a LeNet-5 playground, uploads with Grad-CAM,
    and training runs with live curves. Ctrl-C stops it."""
    uvicorn, create_app = _server_modules()
    if host not in LOCAL_HOSTS:
        typer.secho(f"warning: listening on {host}: anyone who can reach this machine can use "
                    "the app (it runs models on uploads and lists your runs)", fg=typer.colors.YELLOW, err=True)
    if not runs.is_dir():
        typer.echo(f"note: {runs} does not exist yet; the Runs page will be empty", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"cnnzoo serve: http://{shown}:{port}/  (runs: {runs.resolve()}; Ctrl-C stops)")
    uvicorn.run(create_app(runs), host=host, port=port, log_level="warning")
