"""The request and response models: one source of truth for validation and OpenAPI.

Field names, types, defaults and limits follow fal's OpenAPI for
``fal-ai/kling-video/v1/standard/image-to-video``; the Kling limits that can be judged
from the JSON alone (≤ 6 dynamic masks, 2–77 trajectory points, tail image vs brush)
are checked here too. Limits that need the fetched files live in ``kinema.media.images``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinema.errors import InputError, error_item

__all__ = [
    "Trajectory",
    "DynamicMask",
    "KlingInput",
    "File",
    "KlingOutput",
    "MAX_DYNAMIC_MASKS",
    "MIN_TRAJECTORY_POINTS",
    "MAX_TRAJECTORY_POINTS",
    "parse_input",
]

MAX_DYNAMIC_MASKS = 6
MIN_TRAJECTORY_POINTS = 2
MAX_TRAJECTORY_POINTS = 77
MAX_PROMPT_CHARS = 2500

_CFG_DESCRIPTION = (
    "\n            The CFG (Classifier Free Guidance) scale is a measure of how close you want\n"
    "            the model to stick to your prompt.\n        "
)


class Trajectory(BaseModel):
    model_config = ConfigDict(title="Trajectory", json_schema_extra={"x-fal-order-properties": ["x", "y"]})

    x: int = Field(title="X", description="X coordinate of the motion trajectory", examples=[279])
    y: int = Field(title="Y", description="Y coordinate of the motion trajectory", examples=[219])


class DynamicMask(BaseModel):
    model_config = ConfigDict(
        title="DynamicMask", json_schema_extra={"x-fal-order-properties": ["mask_url", "trajectories"]}
    )

    mask_url: str = Field(
        title="Mask Url",
        description="URL of the image for Dynamic Brush Application Area"
        " (Mask image created by users using the motion brush)",
        examples=["https://storage.googleapis.com/falserverless/kling/new_dynamic_mask.png"],
    )
    trajectories: list[Trajectory] | None = Field(
        default=None,
        title="Trajectories",
        description="List of trajectories",
        examples=[[{"y": 219, "x": 279}, {"y": 65, "x": 417}]],
    )


class KlingInput(BaseModel):
    model_config = ConfigDict(
        title="V1ImageToVideoRequest",
        json_schema_extra={
            "x-fal-order-properties": [
                "prompt",
                "image_url",
                "duration",
                "negative_prompt",
                "cfg_scale",
                "tail_image_url",
                "static_mask_url",
                "dynamic_masks",
            ]
        },
    )

    prompt: str = Field(
        title="Prompt",
        max_length=MAX_PROMPT_CHARS,
        description="The prompt for the video",
        examples=["Snowflakes fall as a car moves forward along the road."],
    )
    image_url: str = Field(
        title="Image Url",
        description="URL of the image to be used for the video",
        examples=["https://storage.googleapis.com/falserverless/kling/kling_input.jpeg"],
    )
    duration: Literal["5", "10"] = Field(
        default="5", title="Duration", description="The duration of the generated video in seconds"
    )
    negative_prompt: str = Field(
        default="blur, distort, and low quality", title="Negative Prompt", max_length=MAX_PROMPT_CHARS
    )
    cfg_scale: float = Field(default=0.5, ge=0, le=1, title="Cfg Scale", description=_CFG_DESCRIPTION)
    tail_image_url: str | None = Field(
        default=None, title="Tail Image Url", description="URL of the image to be used for the end of the video"
    )
    static_mask_url: str | None = Field(
        default=None,
        title="Static Mask Url",
        description="URL of the image for Static Brush Application Area"
        " (Mask image created by users using the motion brush)",
        examples=["https://storage.googleapis.com/falserverless/kling/new_static_mask.png"],
    )
    dynamic_masks: list[DynamicMask] | None = Field(
        default=None, title="Dynamic Masks", description="List of dynamic masks"
    )
    #: kinema extension (absent from fal's schema): varies stochastic effects of the motion engine.
    seed: int | None = Field(
        default=None,
        title="Seed",
        description="kinema extension: seed for stochastic effects; the same request and seed give the same video.",
        json_schema_extra={"x-kinema-extension": True},
    )

    @property
    def duration_s(self) -> int:
        return int(self.duration)

    @property
    def uses_brush(self) -> bool:
        return self.static_mask_url is not None or bool(self.dynamic_masks)


class File(BaseModel):
    model_config = ConfigDict(
        title="File",
        json_schema_extra={"x-fal-order-properties": ["url", "content_type", "file_name", "file_size", "file_data"]},
    )

    url: str = Field(title="Url", description="The URL where the file can be downloaded from.")
    content_type: str | None = Field(
        default=None, title="Content Type", description="The mime type of the file.", examples=["image/png"]
    )
    file_name: str | None = Field(
        default=None,
        title="File Name",
        description="The name of the file. It will be auto-generated if not provided.",
        examples=["z9RV14K95DvU.png"],
    )
    file_size: int | None = Field(
        default=None, title="File Size", description="The size of the file in bytes.", examples=[4404019]
    )
    file_data: bytes | None = Field(default=None, title="File Data", description="File data")


class KlingOutput(BaseModel):
    model_config = ConfigDict(title="KlingV1I2VOutput", json_schema_extra={"x-fal-order-properties": ["video"]})

    video: File = Field(
        title="Video",
        description="The generated video",
        examples=[{"url": "https://storage.googleapis.com/falserverless/kling/kling_i2v_output.mp4"}],
    )


_URL_FIELDS = ("image_url", "tail_image_url", "static_mask_url")


def _check_url(value: str, loc: list[str | int], errors: list[dict[str, Any]]) -> None:
    low = value[:16].lower()
    if not (low.startswith("http://") or low.startswith("https://") or low.startswith("data:")):
        errors.append(
            error_item(
                loc,
                "must be an http(s):// URL or a data: URI (e.g. data:image/png;base64,...)",
                "url_scheme",
            )
        )


def parse_input(payload: Any) -> KlingInput:
    """Validate a JSON payload into :class:`KlingInput`, raising :class:`InputError` with fal's 422 list.

    Checks every schema rule plus the Kling limits judged from the JSON alone.
    """
    # 1. Schema rules (pydantic), reported in fal's shape with a "body" prefix.
    if not isinstance(payload, dict):
        raise InputError.single(["body"], "Input should be a JSON object", "model_attributes_type")
    try:
        req = KlingInput.model_validate(payload)
    except ValidationError as exc:
        raise InputError([_pyd_item(e) for e in exc.errors(include_url=False)]) from None

    # 2. Kling limits that the JSON alone decides.
    errors: list[dict[str, Any]] = []
    for name in _URL_FIELDS:
        value = getattr(req, name)
        if value is not None:
            _check_url(value, ["body", name], errors)
    masks = req.dynamic_masks or []
    if len(masks) > MAX_DYNAMIC_MASKS:
        errors.append(
            error_item(
                ["body", "dynamic_masks"],
                f"at most {MAX_DYNAMIC_MASKS} dynamic masks are allowed, got {len(masks)}",
                "too_long",
                max_length=MAX_DYNAMIC_MASKS,
            )
        )
    for i, mask in enumerate(masks):
        _check_url(mask.mask_url, ["body", "dynamic_masks", i, "mask_url"], errors)
        points = mask.trajectories or []
        loc: list[str | int] = ["body", "dynamic_masks", i, "trajectories"]
        if not (MIN_TRAJECTORY_POINTS <= len(points) <= MAX_TRAJECTORY_POINTS):
            errors.append(
                error_item(
                    loc,
                    f"a trajectory needs {MIN_TRAJECTORY_POINTS} to {MAX_TRAJECTORY_POINTS} points, got {len(points)}",
                    "trajectory_length",
                    min_length=MIN_TRAJECTORY_POINTS,
                    max_length=MAX_TRAJECTORY_POINTS,
                )
            )
        for j, p in enumerate(points):
            if p.x < 0 or p.y < 0:
                errors.append(
                    error_item(
                        [*loc, j],
                        f"point ({p.x}, {p.y}) is outside the image:"
                        " coordinates are pixels from the bottom-left corner and cannot be negative",
                        "trajectory_point_outside",
                    )
                )
    if req.tail_image_url is not None and req.uses_brush:
        errors.append(
            error_item(
                ["body", "tail_image_url"],
                "tail_image_url cannot be combined with static_mask_url or dynamic_masks:"
                " use either a tail image or the motion brush",
                "mutually_exclusive",
            )
        )
    if errors:
        raise InputError(errors)
    return req


def _plain(ctx: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in ctx.items()}


def _pyd_item(e: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
    if e.get("ctx"):
        item["ctx"] = _plain(e["ctx"])
    return item
