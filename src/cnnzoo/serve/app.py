"""The web app: one static page (static/, shipped in the package, no CDN) and a JSON API over
the same library calls as the CLI.

    GET  /                                  the page (Zoo, Model, Compare, Playground, Runs)
    GET  /api/zoo                           every model: family, year, params, MACs, memory, top-1/5
    GET  /api/zoo/charts                    the bubble charts, laid out (serve.chart)
    GET  /api/models/{name}?input=CxHxW     `cnnzoo summary` rows, stages, diagram, paper
    GET  /api/models/{name}/explain?layer=  `cnnzoo summary --explain`
    GET  /api/compare?models=a,b&input=     totals and stages side by side (2 to 6)
    GET  /api/runs                          runs under --runs
    GET  /api/runs/{run}                    metrics.csv rows, the model record, figure names
    GET  /api/runs/{run}/figure/{path}      a PNG/SVG inside the run folder
    POST /api/playground/lenet              {"pixels": 28x28} -> scores, C1/S2/C3 feature maps
    POST /api/runs/{run}/predict?layer=     raw image bytes -> top-5, filters, maps, Grad-CAM
    /api/layers/...                         the Convolution page (layers.py lists its routes)
    GET  /api/reconcile/{name}, /api/own    why the counters disagree; your own model (reconcile.py)

Errors are JSON {"error": message} with a 4xx status: 400 bad input, 403 a path out of
--runs, 404 unknown model/run/layer (with close matches), 413 upload too large, 415 not an
image. A run that cannot be read is listed with an "error" instead of its numbers. Anything
else (a bug) is logged with its traceback and answered 500 {"error": ...}, the traceback never
in the body; JSON never holds NaN. Handlers that compute run in the thread pool; shared state
is bounded caches (state.BoundedCache).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..analysis.compare import parse_input
from ..cache import cache_dir
from ..data.images import ImageError
from ..errors import CnnzooError, InvalidArgumentError, UnknownModelError
from . import inference, layers, runs, zoo
from . import reconcile as reconcile_api
from .state import ForbiddenPathError, ModelCache, NotFoundError, playground_file

MAX_UPLOAD_BYTES = int(os.environ.get("CNNZOO_MAX_UPLOAD", 8 * 2**20))
MAX_INPUT = (4096, 16384, 16384)  # ?input= CxHxW bounds: past them torch's sizes overflow
STATIC = resources.files("cnnzoo.serve") / "static"
log = logging.getLogger("cnnzoo.serve")


class UploadTooLarge(CnnzooError):
    pass


class JSON(JSONResponse):
    """JSON without NaN or infinity (invalid JSON): such floats are sent as null."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _error(err: Exception) -> Response:
    if isinstance(err, OSError) and not isinstance(err, CnnzooError):  # no server path in the answer
        return JSON({"error": f"that path cannot be read ({err.strerror or type(err).__name__})"},
                    status_code=_status(err))
    return JSON({"error": str(err)}, status_code=_status(err))


def _status(err: Exception) -> int:
    if isinstance(err, (UnknownModelError, NotFoundError)):
        return 404
    if isinstance(err, ForbiddenPathError):
        return 403
    if isinstance(err, UploadTooLarge):
        return 413
    if isinstance(err, ImageError):
        return 415
    if isinstance(err, OSError) and err.errno not in (errno.ENAMETOOLONG, errno.EINVAL):
        return 404  # a file under --runs that is not there or cannot be read
    return 400


class LastResort:
    """Any exception a handler did not turn into a 4xx (a bug): logged with its traceback,
    answered 500 with a one-line JSON error, never the traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:  # too late for another answer: the server closes the connection
                raise
            body = {"error": f"internal error ({type(err).__name__}); the server's log has the details"}
            await JSON(body, status_code=500)(scope, receive, send)


def _json(fn: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
    """A sync handler(request, app_state) run in the thread pool; library errors -> 4xx JSON."""
    async def endpoint(request: Request) -> Response:
        try:
            return JSON(await run_in_threadpool(fn, request, request.app.state))
        except (CnnzooError, OSError) as err:
            return _error(err)
    return endpoint


def _size(request: Request) -> tuple[int, int, int] | None:
    spec = request.query_params.get("input")
    if not spec:
        return None
    size = parse_input(spec[:100])  # a longer one is not CxHxW anyway: the message shows a part
    if any(v > top for v, top in zip(size, MAX_INPUT)):
        raise InvalidArgumentError(f"input {spec[:100]!r} is too large for the web app: at most "
                                   f"{MAX_INPUT[0]} channels and {MAX_INPUT[1]} pixels a side")
    return size


def _zoo(request: Request, state: Any) -> Any:
    return zoo.zoo_rows(state.models)


def _zoo_charts(request: Request, state: Any) -> Any:
    return zoo.zoo_charts(state.models)


def _model(request: Request, state: Any) -> Any:
    return zoo.model_detail(request.path_params["name"], _size(request))


def _explain(request: Request, state: Any) -> Any:
    layer = request.query_params.get("layer", "")
    return zoo.explain_layer(request.path_params["name"], layer, _size(request))


def _compare(request: Request, state: Any) -> Any:
    names = [n for n in request.query_params.get("models", "").split(",") if n]
    return zoo.compare(names, _size(request))


def _runs(request: Request, state: Any) -> Any:
    return {"runs_dir": str(state.runs), "runs": runs.list_runs(state.runs)}


def _run(request: Request, state: Any) -> Any:
    return runs.run_detail(state.runs, request.path_params["run"])


def _lenet(request: Request, state: Any) -> Any:
    body = request.state.body
    path = playground_file(state.cache_dir)
    model, record = state.models_cache.get(path, inference.load_model)
    return inference.classify_drawing(model, record, body.get("pixels"))


async def lenet(request: Request) -> Response:
    try:
        request.state.body = json.loads(await _read_capped(request, 2**20) or b"{}")
        if not isinstance(request.state.body, dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        return JSON({"error": f"body must be JSON {{\"pixels\": [[...28 numbers] x 28]}} "
                              f"({str(err)[:200]})"}, status_code=400)
    except UploadTooLarge as err:
        return _error(err)
    return await _json(_lenet)(request)


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise UploadTooLarge(f"upload of {int(declared):,} bytes exceeds the limit of {cap:,} bytes")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > cap:
            raise UploadTooLarge(f"upload exceeds the limit of {cap:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def predict(request: Request) -> Response:
    """Raw image bytes in the body (what the page's file input sends)."""
    state = request.app.state
    try:
        data = await _read_capped(request, state.max_upload)
        if not data:
            raise ImageError("empty upload: send the image file's bytes as the request body")
        model_file = runs.run_model_file(state.runs, request.path_params["run"])
        layer = request.query_params.get("layer") or None
        with tempfile.TemporaryDirectory(prefix="cnnzoo-upload-") as tmp:
            img = Path(tmp) / "upload"
            img.write_bytes(data)
            try:
                out = await run_in_threadpool(inference.classify_upload, state.models_cache,
                                              model_file, img, layer)
            except CnnzooError as err:  # name the upload, not the temporary file
                text = str(err).replace(str(img), "the uploaded file")
                raise type(err)(text.replace(f"{state.runs.resolve()}{os.sep}", "")) from None
        return JSON(out)
    except (CnnzooError, OSError) as err:
        return _error(err)


async def figure(request: Request) -> Response:
    try:
        path = runs.figure_path(request.app.state.runs, request.path_params["run"],
                                request.path_params["path"])
    except (CnnzooError, OSError) as err:
        return _error(err)
    return FileResponse(path, headers={"Cache-Control": "no-store"})


async def index(request: Request) -> Response:
    return Response((STATIC / "index.html").read_text(), media_type="text/html")


async def not_found(request: Request, exc: Exception) -> Response:
    return JSON({"error": f"no such page or API: {request.url.path[:200]}"}, status_code=404)


async def not_allowed(request: Request, exc: Exception) -> Response:
    return JSON({"error": f"{request.method} is not allowed on {request.url.path[:200]}"}, status_code=405)


def create_app(runs_dir: str | os.PathLike = "runs", *, models: Sequence[str] | None = None,
               cache: str | os.PathLike | None = None, max_upload: int = MAX_UPLOAD_BYTES) -> Starlette:
    """The app. `models`: the names the Zoo lists (default: every registered model);
    `cache`: where the playground LeNet-5 is kept (default: the cache's playground/)."""
    routes = [
        Route("/", index),
        Route("/api/zoo", _json(_zoo)),
        Route("/api/zoo/charts", _json(_zoo_charts)),
        Route("/api/models/{name}", _json(_model)),
        Route("/api/models/{name}/explain", _json(_explain)),
        Route("/api/compare", _json(_compare)),
        Route("/api/runs", _json(_runs)),
        Route("/api/runs/{run:path}/figure/{path:path}", figure),
        Route("/api/runs/{run:path}/predict", predict, methods=["POST"]),
        Route("/api/runs/{run:path}", _json(_run)),
        Route("/api/playground/lenet", lenet, methods=["POST"]),
        *layers.routes(_status, _read_capped),  # the Convolution page
        *reconcile_api.routes(_json, _read_capped),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed},
                    middleware=[Middleware(LastResort)])
    app.state.runs = Path(runs_dir)
    app.state.models = list(models) if models is not None else None
    app.state.cache_dir = Path(cache) if cache is not None else cache_dir("playground")
    app.state.models_cache = ModelCache()
    app.state.max_upload = max_upload
    zoo.warm_up()
    return app
