"""The HTTP API and the editor page of ``lbam serve`` (FastAPI).

    POST /api/v1/inpaint   multipart: image, mask (white = hole), any lbam.inpaint option, format,
                           quality; or IOPaint's JSON request (base64 image and mask)
    GET  /api/v1/health    {"status": "ok"}
    GET  /api/v1/model     the loaded generator: name, architecture, variant, width, parameters...
    GET  /                 the editor page; /docs the OpenAPI schema

Every error is ``{"error": "one line"}`` with its status: 400 unreadable image or mask, a size
mismatch, an all-hole mask; 413 an upload or a pixel count over the limit (checked before
decoding); 415 not an image or not multipart/JSON; 422 a bad option; 503 (with Retry-After) when
the queue is full. The server sends no CORS headers: only its own page can call it from a browser.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from torch import nn

from lbam._version import __version__
from lbam.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from lbam.errors import LbamError
from lbam.imaging.io import NotAnImageError, PixelLimitError
from lbam.options import InpaintOptions
from lbam.server.inpainting import FORMATS, MEDIA_TYPES, Busy, Worker, inpaint_bytes, model_facts, save_output

STATIC = resources.files("lbam") / "server" / "static"
# IOPaint's hd_strategy values and ours.
IOPAINT_STRATEGIES = {"Original": "full", "Resize": "resize", "Crop": "crop"}


@dataclass(frozen=True)
class ServerSettings:
    """How ``lbam serve`` runs; see ``lbam serve --help``."""

    model_name: str = DEFAULT_MODEL
    max_upload_mb: float = 50.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    output_dir: Path | None = None
    queue_size: int = 4

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class RequestError(Exception):
    """A bad request, answered with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(model: nn.Module, device: Any, settings: ServerSettings | None = None) -> FastAPI:
    """The application serving ``model`` (already loaded, in eval mode, on ``device``)."""
    settings = settings or ServerSettings()
    worker = Worker(settings.queue_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        worker.close()  # Ctrl-C: the running inference finishes, waiting ones are dropped

    app = FastAPI(title="lbam", version=__version__, description=__doc__.split("\n\n")[0], lifespan=lifespan)
    facts = model_facts(model, settings.model_name, device)
    app.state.worker = worker
    _error_handlers(app)

    @app.get("/api/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/model")
    async def model_info() -> dict[str, Any]:
        return facts

    @app.post("/api/v1/inpaint", openapi_extra=_inpaint_openapi(), response_class=Response)
    async def inpaint(request: Request) -> Response:
        image, mask, options, fmt, quality = await _parse(request, settings)
        try:
            result = await worker.run(lambda: inpaint_bytes(model, image, mask, options, fmt, quality))
        except Busy:
            raise RequestError(503, f"busy: {settings.queue_size + 1} requests are already queued") from None
        except NotAnImageError as error:
            raise RequestError(415, str(error)) from None
        except PixelLimitError as error:
            raise RequestError(413, str(error)) from None
        except LbamError as error:
            raise RequestError(400, str(error)) from None
        if settings.output_dir is not None:
            save_output(settings.output_dir, result)
        headers = {
            "X-Lbam-Seconds": f"{result.seconds:.3f}",
            "X-Lbam-Strategy": result.strategy,
            "X-Lbam-Blend": options.blend,
            "X-Lbam-Hole-Fraction": f"{result.hole_fraction:.6f}",
        }
        return Response(result.data, media_type=MEDIA_TYPES[result.fmt], headers=headers)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


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


async def _parse(
    request: Request, settings: ServerSettings
) -> tuple[bytes, bytes, InpaintOptions, str | None, int]:
    """(image bytes, mask bytes, options, response format or None, JPEG/WebP quality) of a request."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise RequestError(
            413, f"upload of {int(declared)} bytes is over the limit of {settings.max_upload_mb:g} MB"
        )
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        return await _parse_multipart(request, settings)
    if kind.startswith("application/json"):
        return _parse_iopaint(await _body(request, settings), settings)
    raise RequestError(415, "send multipart/form-data (image, mask, options) or IOPaint's JSON request")


async def _body(request: Request, settings: ServerSettings) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_upload_bytes:
            raise RequestError(413, f"upload is over the limit of {settings.max_upload_mb:g} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_multipart(
    request: Request, settings: ServerSettings
) -> tuple[bytes, bytes, InpaintOptions, str | None, int]:
    form = await request.form(max_files=2, max_fields=32, max_part_size=settings.max_upload_bytes)
    files = {}
    for name in ("image", "mask"):
        upload = form.get(name)
        if upload is None or isinstance(upload, str):
            raise RequestError(400, f"the form needs a file field {name!r}")
        files[name] = await upload.read()
    fields = {
        key: value for key, value in form.items() if key not in ("image", "mask") and isinstance(value, str)
    }
    fmt = _format(fields.pop("format", None))
    quality = _number("quality", fields.pop("quality", "95"), int)
    options = _options(fields, settings)
    return files["image"], files["mask"], options, fmt, quality


def _parse_iopaint(
    body: bytes, settings: ServerSettings
) -> tuple[bytes, bytes, InpaintOptions, str | None, int]:
    """IOPaint's request: base64 (or data-URL) ``image`` and ``mask`` (255 = hole), hd_strategy*."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "the JSON request is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the JSON request must be an object with 'image' and 'mask'")
    image, mask = (_base64(data.get(key), key) for key in ("image", "mask"))
    fields: dict[str, Any] = {}
    strategy = data.get("hd_strategy")
    if strategy is not None:
        if strategy not in IOPAINT_STRATEGIES:
            raise RequestError(
                422, f"hd_strategy must be one of {', '.join(IOPAINT_STRATEGIES)}, got {strategy!r}"
            )
        fields["strategy"] = IOPAINT_STRATEGIES[strategy]
    for theirs, ours in (
        ("hd_strategy_resize_limit", "max_size"),
        ("hd_strategy_crop_margin", "crop_margin"),
    ):
        if data.get(theirs) is not None:
            fields[ours] = str(data[theirs])
    return image, mask, _options(fields, settings), _format(data.get("format")), 95


def _base64(value: object, key: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise RequestError(400, f"the JSON request needs {key!r} as base64 or a data URL")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{key!r} is not valid base64") from None


def _format(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value.lower() not in FORMATS:
        raise RequestError(422, f"format must be png, jpeg or webp, got {value!r}")
    return FORMATS[value.lower()]


def _options(fields: dict[str, str], settings: ServerSettings) -> InpaintOptions:
    """The options of the form fields, typed by :class:`InpaintOptions` (422 for anything wrong)."""
    types = {field.name: field.type for field in dataclasses.fields(InpaintOptions)}
    values: dict[str, Any] = {"max_pixels": settings.max_pixels}
    for key, text in fields.items():
        if key not in types or key == "max_pixels":
            raise RequestError(
                422, f"unknown option {key!r}; options: {', '.join(k for k in types if k != 'max_pixels')}"
            )
        values[key] = _typed(key, text, str(types[key]))
    try:
        return InpaintOptions(**values)
    except LbamError as error:
        raise RequestError(422, str(error)) from None


def _typed(key: str, text: str, kind: str) -> Any:
    if kind == "bool":
        if text.lower() in ("true", "1", "on", "yes"):
            return True
        if text.lower() in ("false", "0", "off", "no", ""):
            return False
        raise RequestError(422, f"option {key!r} must be true or false, got {text!r}")
    if kind in ("int", "float"):
        return _number(key, text, int if kind == "int" else float)
    return text


def _number(key: str, text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise RequestError(422, f"option {key!r} must be a number, got {text!r}") from None


def _inpaint_openapi() -> dict[str, Any]:
    """The request bodies of POST /api/v1/inpaint for the OpenAPI schema (both forms)."""
    properties: dict[str, Any] = {
        "image": {"type": "string", "format": "binary", "description": "the photo"},
        "mask": {"type": "string", "format": "binary", "description": "white (non-zero) = hole"},
        "format": {"type": "string", "enum": ["png", "jpeg", "webp"], "description": "default: the photo's"},
        "quality": {"type": "integer", "default": 95, "description": "JPEG/WebP quality"},
    }
    kinds = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}
    for field in dataclasses.fields(InpaintOptions):
        if field.name != "max_pixels":
            properties[field.name] = {
                "type": kinds[str(field.type)],
                "default": field.default,
                "description": field.metadata["help"],
            }
    iopaint = {
        "type": "object",
        "required": ["image", "mask"],
        "properties": {
            "image": {"type": "string", "description": "base64 or data URL"},
            "mask": {"type": "string", "description": "base64 or data URL; 255 = hole"},
            "hd_strategy": {"type": "string", "enum": list(IOPAINT_STRATEGIES)},
            "hd_strategy_resize_limit": {"type": "integer"},
            "hd_strategy_crop_margin": {"type": "integer"},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["image", "mask"], "properties": properties}
                },
                "application/json": {"schema": iopaint},
            },
        },
        "responses": {
            "200": {"description": "the inpainted image", "content": {t: {} for t in MEDIA_TYPES.values()}}
        },
    }
