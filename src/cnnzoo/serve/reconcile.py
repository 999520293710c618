"""The explorer's Reconcile and Own-model pages: their JSON API, mounted by app.py.

    GET  /api/reconcile/{name}?input=CxHxW&counters=a,b   `cnnzoo reconcile` as JSON
    GET  /api/own?name=tv:NAME&input=CxHxW                 `cnnzoo summary` of a tv:/timm: model
    POST /api/own?input=CxHxW                              an ONNX file's bytes -> its summary

Only zoo names and tv:/timm: names are taken by name (a path would let a client make the server
read its files); an ONNX file is uploaded. Results are kept in memory (a few, newest last).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from threading import Lock
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..analysis import analyze, own
from ..analysis.compare import parse_input
from ..errors import CnnzooError, InvalidArgumentError, UnknownModelError
from ..registry import get_entry, list_models

_KEEP = 16
_cache: OrderedDict[tuple, Any] = OrderedDict()
_lock = Lock()


def _remember(key: tuple, make: Callable[[], Any]) -> Any:
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = make()
    with _lock:
        _cache[key] = value
        while len(_cache) > _KEEP:
            _cache.popitem(last=False)
    return value


def _name(name: str) -> str:
    """A zoo name or tv:/timm: name; anything else (a path above all) is refused."""
    if own.is_library_name(name) or name in list_models():
        return name
    get_entry(name)  # the registry's "unknown model, did you mean" (404)
    raise UnknownModelError(f"unknown model {name!r}")


def _size(request: Request) -> tuple[int, int, int] | None:
    spec = request.query_params.get("input")
    return parse_input(spec) if spec else None


def reconcile_json(request: Request, state: Any) -> Any:
    from ..analysis.reconcile import check_counters, reconcile

    name, size = _name(request.path_params["name"]), _size(request)
    raw = request.query_params.get("counters")
    counters = tuple(c.strip() for c in raw.split(",") if c.strip()) if raw is not None else None
    check_counters(counters)
    return _remember(("reconcile", name, size, counters),
                     lambda: reconcile(name, size, counters=counters).to_dict())


def own_json(request: Request, state: Any) -> Any:
    name = request.query_params.get("name", "")
    if not own.is_library_name(name):
        raise InvalidArgumentError(f"name must be tv:NAME or timm:NAME (e.g. tv:resnet50), got {name!r}; "
                                   "upload an ONNX file with POST")
    size = _size(request)
    return _remember(("own", name, size), lambda: analyze(name, input_size=size).to_dict())


def routes(json: Callable[[Callable[..., Any]], Callable[[Request], Awaitable[Response]]],
           read_capped: Callable[[Request, int], Awaitable[bytes]]) -> list[Route]:
    """The routes, given app.py's JSON wrapper (errors -> 4xx) and its capped body reader."""
    async def upload(request: Request) -> Response:
        try:
            data = await read_capped(request, request.app.state.max_upload)
            if not data:
                raise InvalidArgumentError("empty upload: send the .onnx file's bytes as the request body")
            request.state.onnx = data
        except CnnzooError as err:
            status = 413 if "exceeds the limit" in str(err) else 400
            return JSONResponse({"error": str(err)}, status_code=status)
        return await json(_onnx_json)(request)

    return [Route("/api/reconcile/{name}", json(reconcile_json)),
            Route("/api/own", json(own_json), methods=["GET"]),
            Route("/api/own", upload, methods=["POST"])]


def _onnx_json(request: Request, state: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="cnnzoo-onnx-") as tmp:
        path = Path(tmp) / "upload.onnx"
        path.write_bytes(request.state.onnx)
        try:
            d = analyze(path, input_size=_size(request)).to_dict()
        except CnnzooError as err:  # name the upload, not the temporary file
            raise InvalidArgumentError(str(err).replace(str(path), "the uploaded file")) from None
    d["model"] = "uploaded ONNX file"
    return d
