"""Decoding input images and masks, with Kling's limits and image-bomb refusal.

Every error is an :class:`~kinema.errors.InputError` naming the field (``loc``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from kinema.errors import InputError, error_item
from kinema.media.storage import sniff_content_type

__all__ = [
    "sniff_image_type",
    "decode_image",
    "decode_mask",
    "mask_pixels",
    "check_input_image",
    "check_input_size",
    "check_mask_size",
    "probe_size",
    "check_mask_shapes",
    "full_mask_warning",
    "MAX_INPUT_BYTES",
    "MIN_SIDE",
    "MAX_ASPECT",
]

MAX_INPUT_BYTES = 10 * 1024 * 1024
MIN_SIDE = 300
MAX_ASPECT = 2.5
#: A mask pixel is selected at luminance ≥ 128, or alpha ≥ 128 when the mask has transparent pixels.
MASK_THRESHOLD = 128
#: Relative tolerance when comparing a mask's aspect ratio with the image's (rounding of sides).
ASPECT_TOLERANCE = 0.02

Loc = Sequence[str | int]


def sniff_image_type(data: bytes) -> str | None:
    """The content type by magic bytes if it is JPEG or PNG (the formats Kling takes), ignoring any header."""
    kind = sniff_content_type(data[:16])
    return kind if kind in ("image/jpeg", "image/png") else None


def _open(data: bytes, loc: Loc, max_pixels: int) -> Image.Image:
    kind = sniff_image_type(data)
    if kind is None:
        raise InputError.single(loc, "the file is not a JPEG or PNG image", "image_format")
    if len(data) > MAX_INPUT_BYTES:
        raise InputError.single(
            loc, f"the image is {len(data)} bytes; at most {MAX_INPUT_BYTES} (10 MB) are allowed", "image_too_large"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size  # header only: no pixels decoded yet
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError.single(loc, "the image declares too many pixels (decompression bomb)", "image_bomb") from None
    except Exception:  # noqa: BLE001 - any parser failure is the user's file
        raise InputError.single(loc, "the image file is corrupt or truncated", "image_decode") from None
    if w * h > max_pixels:
        raise InputError.single(
            loc,
            f"the image declares {w}x{h} = {w * h} pixels; at most {max_pixels} are allowed (decompression bomb?)",
            "image_bomb",
        )
    return img


def _load(img: Image.Image, loc: Loc) -> Image.Image:
    try:
        img.load()
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001
        raise InputError.single(loc, "the image file is corrupt or truncated", "image_decode") from None


def _wide_gray_to_l(img: Image.Image) -> Image.Image:
    """16-bit grayscale PNGs open as ``I;16``/``I``; Pillow's own conversion to 8 bits clips at 255."""
    if img.mode.startswith("I"):
        wide = np.asarray(img).astype(np.uint32)
        return Image.fromarray((np.minimum(wide, 65535) >> 8).astype(np.uint8), mode="L")
    return img


def decode_image(data: bytes, loc: Loc, *, max_pixels: int = 40_000_000) -> np.ndarray:
    """Decode a JPEG/PNG to (H, W, 3) uint8 RGB after refusing bombs from the header alone."""
    img = _wide_gray_to_l(_load(_open(data, loc, max_pixels), loc))
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if "A" in img.mode or img.mode == "P" else img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def probe_size(data: bytes, loc: Loc, *, max_pixels: int = 40_000_000) -> tuple[int, int]:
    """(width, height) from the file's header alone: no pixel is decoded (refuses non-images and bombs)."""
    img = _open(data, loc, max_pixels)
    try:
        return img.size
    finally:
        img.close()


def check_input_image(image: np.ndarray, loc: Loc) -> None:
    """Kling's limits on the input and tail image: sides ≥ 300 px, aspect between 1:2.5 and 2.5:1."""
    h, w = image.shape[:2]
    check_input_size(w, h, loc)


def check_mask_size(w: int, h: int, loc: Loc) -> None:
    """What a mask's header alone can refuse: masks share the image's aspect (within ASPECT_TOLERANCE),
    which lies between 1:2.5 and 2.5:1, so a mask outside that range is wrong whatever the image."""
    aspect = w / h
    widest = MAX_ASPECT * (1 + ASPECT_TOLERANCE)
    if aspect > widest or aspect < 1 / widest:
        raise InputError.single(
            loc,
            f"the mask is {w}x{h} (aspect {aspect:.2f}); a mask must have the image's aspect ratio, which is "
            "between 1:2.5 and 2.5:1",
            "mask_aspect",
        )


def check_input_size(w: int, h: int, loc: Loc) -> None:
    """:func:`check_input_image` on the sides alone (from :func:`probe_size`, before decoding: a 76 KiB PNG of
    1 x 40,000,000 px took a worker to ~980 MiB when it was decoded first)."""
    if min(w, h) < MIN_SIDE:
        raise InputError.single(
            loc, f"the image is {w}x{h}; each side must be at least {MIN_SIDE} px", "image_too_small"
        )
    aspect = w / h
    if aspect > MAX_ASPECT or aspect < 1 / MAX_ASPECT:
        raise InputError.single(
            loc,
            f"the image is {w}x{h} (aspect {aspect:.2f}); the aspect ratio must be between 1:2.5 and 2.5:1",
            "image_aspect",
        )


def decode_mask(data: bytes, loc: Loc, *, max_pixels: int = 40_000_000) -> np.ndarray:
    """Decode a mask to (H, W) bool by the rule in ``shared/spec/kling-semantics.md``.

    Alpha counts only when some pixel is transparent (alpha < 128): then the opaque pixels are selected,
    whatever their colour. Otherwise (no alpha, or opaque everywhere as a canvas export is) the mask is
    read by luminance ≥ 128, so opaque RGBA, RGB and grayscale copies of one mask select the same pixels.
    """
    return mask_pixels(_wide_gray_to_l(_load(_open(data, loc, max_pixels), loc)))


def mask_pixels(img: Image.Image) -> np.ndarray:
    """The selected pixels of a decoded mask image (see :func:`decode_mask`)."""
    if "A" in img.mode or "a" in img.mode or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
        alpha = rgba[..., 3]
        if (alpha < MASK_THRESHOLD).any():
            return alpha >= MASK_THRESHOLD
        img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")  # the same luma as an RGB copy
    return np.asarray(img.convert("L"), dtype=np.uint8) >= MASK_THRESHOLD


def check_mask_shapes(image_size: tuple[int, int], masks: Sequence[tuple[Loc, np.ndarray]]) -> None:
    """Masks share one resolution and the image's aspect ratio, and select something.

    ``image_size`` is (width, height). Every problem is reported, each under its mask's ``loc``.
    """
    iw, ih = image_size
    errors: list[dict[str, Any]] = []
    first: tuple[int, int] | None = None
    for loc, mask in masks:
        mh, mw = mask.shape[:2]
        if abs((mw / mh) / (iw / ih) - 1.0) > ASPECT_TOLERANCE:
            errors.append(
                error_item(
                    loc,
                    f"the mask is {mw}x{mh} but the image is {iw}x{ih}: a mask must have the image's aspect ratio",
                    "mask_aspect",
                )
            )
        elif first is None:
            first = (mw, mh)
        elif (mw, mh) != first:
            errors.append(
                error_item(
                    loc,
                    f"the mask is {mw}x{mh} but another mask is {first[0]}x{first[1]}:"
                    " all masks must share one resolution",
                    "mask_resolution",
                )
            )
        if not mask.any():
            errors.append(
                error_item(
                    loc,
                    "the mask selects no pixel: paint the region white (luminance ≥ 128) on black, "
                    "or opaque on a transparent background",
                    "mask_empty",
                )
            )
    if errors:
        raise InputError(errors)


def full_mask_warning(loc: Loc, mask: np.ndarray) -> str | None:
    """The job-log warning for a mask that selects every pixel (accepted, but rarely what was meant)."""
    if not mask.all():
        return None
    parts = [str(p) for p in loc if p != "body"]
    field = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts).lstrip(".")
    effect = "the whole image stays still" if parts[:1] == ["static_mask_url"] else "the whole image moves"
    return (
        f"{field}: the mask selects every pixel, so {effect}; a mask selects white pixels "
        "(or opaque ones when it has transparent pixels)"
    )
