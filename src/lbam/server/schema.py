"""The request schemas of ``POST /api/v1/inpaint``, generated from :class:`lbam.options.InpaintOptions`.

Pydantic validates every field (type, range, choices) and names the field in its error; FastAPI's
OpenAPI document and the page's choice lists come from the same models, so the command line, the
Python API, the HTTP API and the page cannot drift apart.

- :data:`InpaintForm`: the multipart form's fields (the files ``image`` and ``mask`` aside): every
  option but ``max_pixels`` (a server setting), plus the response ``format`` and ``quality``.
- :class:`IOPaintRequest`: IOPaint's JSON request (base64 image and mask, ``hd_strategy*``); fields
  of IOPaint's other models are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from lbam.imaging.formats import SERVED_FORMATS
from lbam.options import DEFAULT_QUALITY, QUALITY_RANGE, InpaintOptions

SERVER_SETTINGS = ("max_pixels",)  # options the server sets, not the request
IOPAINT_STRATEGIES = {"Original": "full", "Resize": "resize", "Crop": "crop"}
# "jpg" is accepted for "jpeg" (file-name habit); answers use the format's own name.
FORMAT_NAMES = (*SERVED_FORMATS, "jpg")
Quality = Annotated[int, Field(ge=QUALITY_RANGE[0], le=QUALITY_RANGE[1], description="JPEG/WebP quality")]
Format = Literal[FORMAT_NAMES]  # type: ignore[valid-type]


def _annotation(field: dataclasses.Field) -> Any:
    meta = field.metadata
    if meta["choices"]:
        return Literal[tuple(meta["choices"])]
    kind = {"bool": bool, "int": int, "float": float, "str": str}[str(field.type)]
    return Annotated[kind, Field(ge=meta["minimum"], le=meta["maximum"])]


def _form_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        field.name: (_annotation(field), Field(field.default, description=field.metadata["help"]))
        for field in dataclasses.fields(InpaintOptions)
        if field.name not in SERVER_SETTINGS
    }
    fields["format"] = (Format | None, Field(None, description="response format (default: the photo's)"))
    fields["quality"] = (Quality, DEFAULT_QUALITY)
    fields["model"] = (
        str | None,
        Field(None, max_length=128, description="a model of GET /api/v1/models (default: the started one)"),
    )
    config = ConfigDict(extra="forbid", str_max_length=256)
    return create_model("InpaintForm", __config__=config, **fields)


InpaintForm = _form_model()


class IOPaintRequest(BaseModel):
    """IOPaint's ``/api/v1/inpaint`` JSON: ``image`` and ``mask`` as base64 or data URLs (255 = hole)."""

    model_config = ConfigDict(extra="ignore")

    image: str = Field(min_length=1, description="base64 or data URL")
    mask: str = Field(min_length=1, description="base64 or data URL; 255 = hole")
    hd_strategy: Literal[tuple(IOPAINT_STRATEGIES)] | None = None  # type: ignore[valid-type]
    hd_strategy_resize_limit: Annotated[int, Field(ge=1, le=65536)] | None = None
    hd_strategy_crop_margin: Annotated[int, Field(ge=0, le=65536)] | None = None
    format: Format | None = None
    quality: Quality = DEFAULT_QUALITY

    def form_fields(self) -> dict[str, Any]:
        """The same request in :data:`InpaintForm`'s terms."""
        fields: dict[str, Any] = {"format": self.format, "quality": self.quality}
        if self.hd_strategy is not None:
            fields["strategy"] = IOPAINT_STRATEGIES[self.hd_strategy]
        if self.hd_strategy_resize_limit is not None:
            fields["max_size"] = self.hd_strategy_resize_limit
        if self.hd_strategy_crop_margin is not None:
            fields["crop_margin"] = self.hd_strategy_crop_margin
        return fields


class SelectRequest(BaseModel):
    """``POST /api/v1/select`` as JSON: the image in base64 and the hints in its pixel coordinates."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="base64 or data URL")
    points: list[tuple[float, float, Literal[0, 1]]] | None = Field(
        None, max_length=64, description="[[x, y, label], ...]: label 1 on the object, 0 off it"
    )
    box: tuple[float, float, float, float] | None = Field(
        None, description="[x0, y0, x1, y1] around the object"
    )


def first_error(error: ValidationError) -> str:
    """A validation error as one line that names the field: ``dilate: Input should be ...``."""
    details = error.errors(include_url=False)
    if not details:
        return "invalid request"
    first = details[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    if first.get("type") == "extra_forbidden":
        known = ", ".join(name for name in InpaintForm.model_fields)
        return f"unknown option {where!r}; options: {known}"
    return f"{where}: {first['msg']}"
