"""The Convolution page's API (numbers in convview.py), mounted by app.py at /api/layers:

    GET  /api/layers                                 zoo model names and native input sizes
    GET  /api/layers/formula?op=&input=HxW&k=&s=&p=&d=&cin=&cout=&groups=&bias=&ceil=&out=
                                                     the analyzer's row for one layer built so
    GET  /api/layers/{model}?input=CxHxW             its conv and pooling rows (hyper-parameters,
                                                     params, MACs, rf, span)
    GET  /api/layers/{model}/unit?layer=&y=&x=       the input box unit (y, x) sees
    POST /api/layers/{model}/watch?layer=&cin=&cout= body: {"pixels": [[0..1]]}, image bytes or
                                                     nothing (a built-in digit) -> image, in/out maps
    POST /api/layers/{model}/unit?layer=&y=&x=       as GET, plus the effective receptive field

Bad input is a 4xx JSON {"error": reason} (unknown model or layer 404, anything else 400, an
upload too large 413, not an image 415); nothing is read from disk but the upload's own bytes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..analysis.compare import parse_input
from ..data.images import load_image
from ..errors import CnnzooError, InvalidArgumentError
from ..registry import get_entry, list_models
from . import convview

MAX_PIXELS_SIDE = 256  # a drawn grid sent as JSON


def default_digit() -> np.ndarray:
    """A '7', 28x28, white on black: what the page shows before anything is drawn."""
    a = np.zeros((28, 28), dtype=np.float32)
    a[6:9, 7:22] = 1.0
    for r in range(9, 24):
        c = 21 - (r - 9) * 8 // 15
        a[r, c - 1:c + 2] = 1.0
    return a


def _int(request: Request, key: str, default: str = "") -> int:
    raw = request.query_params.get(key, default)
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgumentError(f"{key} must be an integer, got {raw!r}") from None


def _size(request: Request) -> tuple[int, ...] | None:
    spec = request.query_params.get("input")
    return parse_input(spec) if spec else None


def _layer(request: Request) -> str:
    layer = request.query_params.get("layer", "")
    if not layer:
        raise InvalidArgumentError("layer= is required: a conv or pooling layer's name "
                                   "(GET /api/layers/MODEL lists them)")
    return layer


def _pixels(body: dict) -> np.ndarray:
    try:
        arr = np.asarray(body.get("pixels"), dtype=np.float32)
    except (ValueError, TypeError):
        arr = np.zeros((0,), dtype=np.float32)
    if arr.ndim != 2 or min(arr.shape) < 1 or max(arr.shape) > MAX_PIXELS_SIDE or not np.isfinite(arr).all():
        raise InvalidArgumentError(f"pixels must be a 2-D grid of numbers in [0, 1], at most "
                                   f"{MAX_PIXELS_SIDE} a side; got shape {list(arr.shape)}")
    return np.clip(arr, 0, 1)


def _image(data: bytes, content_type: str) -> np.ndarray:
    """The request body as an image in [0, 1]: nothing, JSON pixels or image file bytes."""
    if not data:
        return default_digit()
    if content_type.startswith("application/json"):
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidArgumentError(f'body must be JSON {{"pixels": [[...]]}} ({err})') from None
        if not isinstance(body, dict):
            raise InvalidArgumentError('body must be a JSON object {"pixels": [[...]]}')
        return _pixels(body)
    with tempfile.TemporaryDirectory(prefix="cnnzoo-upload-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            img = load_image(path)
        except CnnzooError as err:  # name the upload, not the temporary file
            raise type(err)(str(err).replace(str(path), "the uploaded file")) from None
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255


def _models(request: Request) -> Any:
    return {"models": [{"name": n, "input_size": list(get_entry(n).input_size)} for n in list_models()]}


def _layers(request: Request) -> Any:
    return convview.model_layers(request.path_params["name"], _size(request))


def _formula(request: Request) -> Any:
    return convview.formula(dict(request.query_params))


def _unit_box(request: Request) -> Any:
    name = request.path_params["name"]
    size = convview.check_size(_size(request) or tuple(get_entry(name).input_size))
    return convview.unit_box(name, size, _layer(request), _int(request, "y"), _int(request, "x"))


def _watch(request: Request, image: np.ndarray) -> Any:
    return convview.watch(request.path_params["name"], _size(request), _layer(request), image,
                          _int(request, "cin", "0"), _int(request, "cout", "0"))


def _unit(request: Request, image: np.ndarray) -> Any:
    return convview.unit(request.path_params["name"], _size(request), _layer(request),
                         _int(request, "y"), _int(request, "x"), image)


def routes(status: Callable[[Exception], int],
           read_capped: Callable[[Request, int], Awaitable[bytes]]) -> list[Route]:
    """The routes, with app.py's error-to-status map and capped body reader."""
    def get(fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await run_in_threadpool(fn, request))
            except CnnzooError as err:
                return JSONResponse({"error": str(err)}, status_code=status(err))
        return endpoint

    def post(fn: Callable[[Request, np.ndarray], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                data = await read_capped(request, request.app.state.max_upload)
                image = await run_in_threadpool(_image, data, request.headers.get("content-type", ""))
                return JSONResponse(await run_in_threadpool(fn, request, image))
            except CnnzooError as err:
                return JSONResponse({"error": str(err)}, status_code=status(err))
        return endpoint

    return [
        Route("/api/layers", get(_models)),
        Route("/api/layers/formula", get(_formula)),
        Route("/api/layers/{name}", get(_layers)),
        Route("/api/layers/{name}/unit", get(_unit_box)),
        Route("/api/layers/{name}/unit", post(_unit), methods=["POST"]),
        Route("/api/layers/{name}/watch", post(_watch), methods=["POST"]),
    ]
