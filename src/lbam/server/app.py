"""The HTTP API and the editor page of ``lbam serve`` (FastAPI).

    POST /api/v1/inpaint   multipart: image, mask (white = hole), any lbam.inpaint option, format,
                           quality; or IOPaint's JSON request (base64 image and mask)
    GET  /api/v1/options   every option with its type, default, range and choices; output formats
    GET  /api/v1/health    {"status": "ok"}
    POST /api/v1/select    multipart: image, points (JSON [[x, y, 1|0], ...]), box (JSON
                           [x0, y0, x1, y1]); or the same as JSON with the image in base64:
                           a PNG of the image's size, white = the object the hints point at
    GET  /api/v1/jobs/ID   the stage and progress of the request sent with ``X-Lbam-Job: ID``
    DELETE /api/v1/jobs/ID cancel it (its request answers 499, its queue slot is free at once)
    GET  /api/v1/model     the started generator's name and card (architecture, settings, sizes...)
    GET  /api/v1/models    the models a request may name in its ``model`` field
    GET  /                 the editor page; /docs the OpenAPI schema

Every error is ``{"error": "one line"}`` with its status: 400 unreadable image or mask, a size
mismatch, an all-hole mask; 403 a foreign Origin or Host; 413 an upload or a pixel count over the
limit (the upload counted as it arrives, chunked or not; the pixels from the header, before
decoding); 415 not an image or not multipart/JSON; 422 a bad field, named; 503 (with Retry-After)
when the queue is full, answered before the upload is read. Uploads are held in memory only.

Only the server's own page may call it from a browser: a request whose ``Origin`` is another site
is refused, and so is a ``Host`` other than the address it listens on or a loopback name (a
DNS-rebinding page), unless listed with ``--allow-origin`` / ``--allow-host``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from torch import nn

from lbam._version import __version__
from lbam.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from lbam.errors import Cancelled, LbamError, NotAnImageError, PixelLimitError
from lbam.imaging.formats import BY_PILLOW, SERVED_FORMATS
from lbam.options import DEFAULT_QUALITY, QUALITY_RANGE, InpaintOptions, describe_options
from lbam.server.inpainting import (
    Busy,
    Job,
    JobBoard,
    Worker,
    inpaint_bytes,
    model_facts,
    save_output,
    select_bytes,
)
from lbam.server.models import ModelShelf
from lbam.server.schema import SERVER_SETTINGS, InpaintForm, IOPaintRequest, SelectRequest, first_error

STATIC = resources.files("lbam") / "server" / "static"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_FORM_FIELDS = 32
MAX_JSON_DEPTH = 32
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ServerSettings:
    """How ``lbam serve`` runs; see ``lbam serve --help``."""

    model_name: str = DEFAULT_MODEL
    max_upload_mb: float = 50.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    output_dir: Path | None = None
    queue_size: int = 4
    host: str = "127.0.0.1"  # the address it listens on: a Host header naming it is its own
    allow_hosts: tuple[str, ...] = ()  # more Host names to answer ("*": any)
    allow_origins: tuple[str, ...] = ()  # more Origins to answer, e.g. "http://my.site" ("*": any)
    max_memory_mb: float | None = None  # a request whose estimated peak is larger gets 413

    @property
    def max_memory_bytes(self) -> int | None:
        return None if self.max_memory_mb is None else int(self.max_memory_mb * 2**20)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class RequestError(Exception):
    """A bad request, answered with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InpaintRequest:
    """A parsed request: the uploaded files' bytes and the validated options."""

    image: bytes
    mask: bytes
    options: InpaintOptions
    fmt: str | None
    quality: int
    model: str


def create_app(
    model: nn.Module, device: Any, settings: ServerSettings | None = None, shelf: ModelShelf | None = None
) -> FastAPI:
    """The application serving ``model`` (already loaded, in eval mode, on ``device``); ``shelf``
    adds the other models a request may name (default: the classical fills only)."""
    settings = settings or ServerSettings()
    shelf = shelf or ModelShelf(settings.model_name, model)
    worker, jobs = Worker(settings.queue_size), JobBoard()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        worker.close()  # Ctrl-C: the running inference finishes, waiting ones are dropped

    app = FastAPI(
        title="lbam",
        version=__version__,
        description=__doc__.split("\n\n")[0],
        lifespan=lifespan,
        docs_url=None,  # served below from files that ship in a package: /docs works offline
        redoc_url=None,  # likewise /redoc
    )
    app.state.worker = worker
    _error_handlers(app)
    _guard(app, settings)
    _info_routes(app, model_facts(model, settings.model_name, device))

    _work_routes(app, worker, jobs, shelf, settings)
    _job_routes(app, jobs)
    _models_route(app, shelf)
    _page_routes(app)
    return app


def _work_routes(
    app: FastAPI, worker: Worker, jobs: JobBoard, shelf: ModelShelf, settings: ServerSettings
) -> None:
    """POST /api/v1/inpaint and /api/v1/select: each holds a queue slot before reading its upload."""

    @app.post("/api/v1/inpaint", openapi_extra=_inpaint_openapi(), response_class=Response)
    async def inpaint(request: Request) -> Response:
        # the slot is taken before the upload is read: a full queue costs the server nothing
        with _busy_is_503(settings), worker.slot(), _tracked(jobs, request) as job:
            parsed = await _parse(request, settings, shelf)
            result = await _run(worker, shelf, parsed, request, job, settings.max_memory_bytes)
        headers = {
            "X-Lbam-Seconds": f"{result.seconds:.3f}",
            "X-Lbam-Model": parsed.model,
            "X-Lbam-Strategy": result.strategy,
            "X-Lbam-Blend": parsed.options.blend,
            "X-Lbam-Refine": result.refine,
            "X-Lbam-Hole-Fraction": f"{result.hole_fraction:.6f}",
        }
        if settings.output_dir is not None:
            headers["X-Lbam-Saved"] = "true" if _keep(settings.output_dir, result) else "false"
        return Response(result.data, media_type=BY_PILLOW[result.fmt].media_type, headers=headers)

    @app.post("/api/v1/select", openapi_extra=_select_openapi(), response_class=Response)
    async def select(request: Request) -> Response:
        with _busy_is_503(settings), worker.slot(), _tracked(jobs, request) as job:
            image, points, box = await _parse_select(request, settings)

            def work(stop: Any) -> bytes:
                return select_bytes(image, points, box, settings.max_pixels, job)

            data = await _guarded(worker.run(work, request.is_disconnected, job.stop))
        return Response(data, media_type="image/png")


def _page_routes(app: FastAPI) -> None:
    """The editor page, its files, its icon and the API documentation."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(str(STATIC / "favicon.png"), media_type="image/png")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _offline_docs(app)


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc from the fastapi-offline package's files, not a CDN."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    assets = files("fastapi_offline") / "static"
    app.mount("/docs-static", StaticFiles(directory=str(assets)), name="docs-static")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="lbam API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
        )

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc() -> Response:
        html = get_redoc_html(
            openapi_url="/openapi.json",
            title="lbam API",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/favicon.ico",
            with_google_fonts=False,  # fonts from Google would need the network
        )
        # ReDoc's footer fetches its logo from a CDN: this page may load nothing from elsewhere
        html.headers["Content-Security-Policy"] = "default-src 'self' blob: data: 'unsafe-inline'"
        return html


def _info_routes(app: FastAPI, facts: dict[str, Any]) -> None:
    options = [o for o in describe_options() if o["name"] not in SERVER_SETTINGS]
    quality = {"minimum": QUALITY_RANGE[0], "maximum": QUALITY_RANGE[1], "default": DEFAULT_QUALITY}
    formats = [
        {"name": f.name, "media_type": f.media_type, "suffix": f.suffixes[0]}
        for f in BY_PILLOW.values()
        if f.name in SERVED_FORMATS
    ]

    @app.api_route("/api/v1/health", methods=["GET", "HEAD"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/api/v1/model", methods=["GET", "HEAD"])
    async def model_info() -> dict[str, Any]:
        return facts

    @app.api_route("/api/v1/options", methods=["GET", "HEAD"])
    async def option_list() -> dict[str, Any]:
        return {"options": options, "formats": formats, "quality": quality}


async def _run(
    worker: Worker, shelf: ModelShelf, parsed: InpaintRequest, request: Request, job: Job, budget: int | None
) -> Any:
    def work(stop: Any) -> Any:
        model = shelf.get(parsed.model)
        options = (parsed.options, parsed.fmt, parsed.quality)
        return inpaint_bytes(model, parsed.image, parsed.mask, *options, job, budget)

    return await _guarded(worker.run(work, request.is_disconnected, job.stop))


async def _guarded(work: Awaitable[T]) -> T:
    """The result of ``work``, its errors turned into JSON answers with their status."""
    try:
        return await work
    except NotAnImageError as error:
        raise RequestError(415, str(error)) from None
    except PixelLimitError as error:
        raise RequestError(413, str(error)) from None
    except Cancelled as error:
        raise RequestError(499, str(error)) from None
    except LbamError as error:
        raise RequestError(400, str(error)) from None


def _tracked(jobs: JobBoard, request: Request) -> contextlib.AbstractContextManager[Job]:
    """The request's job, listed under its ``X-Lbam-Job`` header if it has one."""
    job_id = request.headers.get("x-lbam-job")
    if job_id is not None and not JobBoard.ID.match(job_id):
        raise RequestError(400, "X-Lbam-Job must be 8 to 64 letters, digits, - or _")
    if job_id is not None and jobs.get(job_id) is not None:
        raise RequestError(409, f"job {job_id!r} is already running")
    return jobs.track(job_id)


def _job_routes(app: FastAPI, jobs: JobBoard) -> None:
    @app.api_route("/api/v1/jobs/{job_id}", methods=["GET", "HEAD"])
    async def job_state(job_id: str) -> dict[str, Any]:
        return _job(jobs, job_id).to_dict()

    @app.delete("/api/v1/jobs/{job_id}")
    async def cancel(job_id: str) -> dict[str, Any]:
        job = _job(jobs, job_id)
        job.stop.set()
        return {**job.to_dict(), "cancelled": True}


def _job(jobs: JobBoard, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise RequestError(404, f"no job {job_id[:64]!r} is running")
    return job


def _models_route(app: FastAPI, shelf: ModelShelf) -> None:
    @app.api_route("/api/v1/models", methods=["GET", "HEAD"])
    async def models() -> dict[str, Any]:
        return {"models": shelf.names(), "default": shelf.default}


@contextlib.contextmanager
def _busy_is_503(settings: ServerSettings) -> Any:
    try:
        yield
    except Busy:
        raise RequestError(503, f"busy: {settings.queue_size + 1} requests are already queued") from None


def _keep(folder: Path, result: Any) -> bool:
    """Keep a copy in ``--output-dir``; a failure (a full disk) is logged, the answer still goes out."""
    try:
        save_output(folder, result)
    except (OSError, LbamError) as error:
        print(f"lbam serve: could not keep a result in {folder}: {error}", file=sys.stderr)
        return False
    return True


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        headers = {"Retry-After": "2"} if error.status == 503 else None
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"msg": "invalid request"}
        return JSONResponse(
            {"error": f"{'.'.join(map(str, first.get('loc', [])))}: {first['msg']}"}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)


def _guard(app: FastAPI, settings: ServerSettings) -> None:
    """Refuse requests from other sites' pages: a foreign Origin, or a Host that is not this server."""
    app.add_middleware(SameSiteOnly, settings=settings)


class SameSiteOnly:
    """ASGI middleware answering 403 JSON to a foreign ``Origin`` or ``Host`` before the app runs.

    A plain ASGI class, not Starlette's ``BaseHTTPMiddleware``: that one hides the client's
    disconnect from ``request.is_disconnected()``, which the worker needs to drop abandoned jobs.
    """

    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            host, origin = headers.get("host", ""), headers.get("origin")
            error = None
            if not host_allowed(host, self.settings):
                error = f"Host {host!r} is not this server (see --allow-host)"
            elif origin is not None and not origin_allowed(
                origin, host, scope.get("scheme", "http"), self.settings
            ):
                error = f"Origin {origin!r} may not call this server (see --allow-origin)"
            if error is not None:
                await JSONResponse({"error": error}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def host_allowed(host: str, settings: ServerSettings) -> bool:
    """True for the listening address, loopback names, IP literals when listening on every
    address, and the names the user listed; never for other DNS names (DNS rebinding)."""
    name = host.rpartition("]")[0].lstrip("[") if host.startswith("[") else host.partition(":")[0]
    name = name.lower().rstrip(".")
    if "*" in settings.allow_hosts or name in (*LOOPBACK_NAMES, settings.host, *settings.allow_hosts):
        return True
    if settings.host in ("0.0.0.0", "::", ""):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
    return False


def origin_allowed(origin: str, host: str, scheme: str, settings: ServerSettings) -> bool:
    """True for the server's own origin (the page it serves) and the origins the user listed."""
    return origin == f"{scheme}://{host}" or origin in settings.allow_origins or "*" in settings.allow_origins


async def _bounded_body(request: Request, settings: ServerSettings) -> AsyncIterator[bytes]:
    """The request body as it arrives, with the byte limit enforced chunk by chunk."""
    declared = request.headers.get("content-length")
    limit = settings.max_upload_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, f"upload of {int(declared)} bytes is over the limit of {settings.max_upload_mb:g} MB"
        )
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"upload is over the limit of {settings.max_upload_mb:g} MB")
        yield chunk


async def _parse(request: Request, settings: ServerSettings, shelf: ModelShelf) -> InpaintRequest:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        files, fields = await _read_multipart(request, settings, ("image", "mask"))
        return _validated(files["image"], files["mask"], fields, settings, shelf)
    if kind.startswith("application/json"):
        body = b"".join([chunk async for chunk in _bounded_body(request, settings)])
        iopaint = _json_request(body, IOPaintRequest)
        image, mask = (
            _base64(value, key) for key, value in (("image", iopaint.image), ("mask", iopaint.mask))
        )
        return _validated(image, mask, iopaint.form_fields(), settings, shelf)
    raise RequestError(415, "send multipart/form-data (image, mask, options) or IOPaint's JSON request")


async def _parse_select(request: Request, settings: ServerSettings) -> tuple[bytes, Any, Any]:
    """The image and the hints of a select request (multipart with JSON text fields, or JSON)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        files, fields = await _read_multipart(request, settings, ("image",))
        unknown = set(fields) - {"points", "box"}
        if unknown:
            raise RequestError(422, f"unknown field {sorted(unknown)[0]!r}; select takes image, points, box")
        hints = {name: _json_field(fields, name) for name in ("points", "box")}
        selection = _checked(SelectRequest, {"image": "-", **hints})
        return files["image"], selection.points, selection.box
    if kind.startswith("application/json"):
        body = b"".join([chunk async for chunk in _bounded_body(request, settings)])
        selection = _json_request(body, SelectRequest)
        return _base64(selection.image, "image"), selection.points, selection.box
    raise RequestError(415, "send multipart/form-data (image, points, box) or JSON")


def _json_field(fields: dict[str, str], name: str) -> Any:
    if name not in fields:
        return None
    try:
        return json.loads(fields[name])
    except (ValueError, RecursionError):
        raise RequestError(422, f"{name}: not valid JSON") from None


async def _read_multipart(
    request: Request, settings: ServerSettings, names: tuple[str, ...]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The form's files and its text fields, parsed as the body streams in and held in memory."""
    parser = MultiPartParser(
        request.headers,
        _bounded_body(request, settings),
        max_files=len(names),
        max_fields=MAX_FORM_FIELDS,
        max_part_size=64 * 1024,
    )
    parser.spool_max_size = settings.max_upload_bytes + 1  # a file part never rolls over to disk
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise RequestError(400, f"bad multipart form: {error.message}") from None
    files: dict[str, bytes] = {}
    for name in names:
        upload = form.get(name)
        if not isinstance(upload, UploadFile):
            raise RequestError(400, f"the form needs a file field {name!r}")
        files[name] = await upload.read()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return files, fields


def _json_request(body: bytes, schema: type[M]) -> M:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError(400, "the JSON request is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the JSON request must be an object with an 'image'")
    if _depth(data) > MAX_JSON_DEPTH:
        raise RequestError(422, f"the JSON request is nested deeper than {MAX_JSON_DEPTH} levels")
    return _checked(schema, data)


def _checked(schema: type[M], data: dict[str, Any]) -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise RequestError(422, first_error(error)) from None


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def _validated(
    image: bytes, mask: bytes, fields: dict[str, Any], settings: ServerSettings, shelf: ModelShelf
) -> InpaintRequest:
    """The options of the request's fields, checked by the one schema (422 naming the field)."""
    if any(name in fields for name in ("image", "mask")):
        raise RequestError(422, "image and mask must be files, not text fields")
    try:
        form = InpaintForm.model_validate(fields)
    except ValidationError as error:
        raise RequestError(422, first_error(error)) from None
    values = form.model_dump()
    fmt, quality, model = values.pop("format"), values.pop("quality"), values.pop("model")
    try:
        options = InpaintOptions(**values, max_pixels=settings.max_pixels)
        model = shelf.check(model)
    except LbamError as error:
        raise RequestError(422, str(error)) from None
    return InpaintRequest(image, mask, options, None if fmt is None else _pillow_format(fmt), quality, model)


def _pillow_format(name: str) -> str:
    return "JPEG" if name == "jpg" else name.upper()


def _base64(value: str, key: str) -> bytes:
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{key!r} is not valid base64") from None


def _inpaint_openapi() -> dict[str, Any]:
    """The request bodies of POST /api/v1/inpaint for the OpenAPI schema, from the two models."""
    form = InpaintForm.model_json_schema()
    form["properties"] = {
        "image": {"type": "string", "format": "binary", "description": "the photo"},
        "mask": {"type": "string", "format": "binary", "description": "white (non-zero) = hole"},
        **form["properties"],
    }
    form["required"] = ["image", "mask"]
    media = {f.media_type: {} for f in BY_PILLOW.values() if f.name in SERVED_FORMATS}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": form},
                "application/json": {"schema": IOPaintRequest.model_json_schema()},
            },
        },
        "responses": {"200": {"description": "the inpainted image", "content": media}},
    }


def _select_openapi() -> dict[str, Any]:
    """The request bodies of POST /api/v1/select for the OpenAPI schema."""
    json_schema = SelectRequest.model_json_schema()
    form = {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"type": "string", "format": "binary", "description": "the photo"},
            "points": {"type": "string", "description": "JSON [[x, y, label], ...]: 1 object, 0 not"},
            "box": {"type": "string", "description": "JSON [x0, y0, x1, y1]"},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": form}, "application/json": {"schema": json_schema}},
        },
        "responses": {"200": {"description": "white = selected", "content": {"image/png": {}}}},
    }
