"""kinema.media.images: decoding real JPEG/PNG files, Kling's limits, masks, bomb refusal."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import jpeg_bytes, png_bytes
from PIL import Image

from kinema.errors import InputError
from kinema.media.images import (
    MAX_INPUT_BYTES,
    check_input_image,
    check_mask_shapes,
    decode_image,
    decode_mask,
    full_mask_warning,
    sniff_image_type,
)

LOC = ["body", "image_url"]


def only_error(exc: pytest.ExceptionInfo[InputError]) -> dict:
    [item] = exc.value.errors
    return item


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, idat: bytes = b"not zlib at all") -> bytes:
    """A PNG whose header declares ``width``×``height`` 8-bit gray pixels, with a tiny (here broken) body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# Decoding --------------------------------------------------------------------------------------
def test_decode_png_exactly(photo: np.ndarray, photo_png: bytes) -> None:
    out = decode_image(photo_png, LOC)
    assert out.dtype == np.uint8 and out.shape == (512, 512, 3)
    assert np.array_equal(out, photo)


def test_decode_jpeg_close_to_original(photo: np.ndarray) -> None:
    out = decode_image(jpeg_bytes(photo, quality=95), LOC)
    assert out.shape == photo.shape
    assert np.abs(out.astype(int) - photo.astype(int)).mean() < 3.0


def test_decode_gray_rgba_and_palette_to_rgb(photo: np.ndarray) -> None:
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    out = decode_image(png_bytes(gray), LOC)
    assert out.shape == (512, 512, 3)
    assert np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    assert np.array_equal(decode_image(png_bytes(rgba), LOC), photo)
    pal = Image.fromarray(photo).quantize(64)
    out = decode_image(_save(pal, "PNG"), LOC)
    assert np.array_equal(out, np.asarray(pal.convert("RGB")))


def test_decode_cmyk_jpeg(photo: np.ndarray) -> None:
    cmyk = Image.fromarray(photo).convert("CMYK")
    out = decode_image(_save(cmyk, "JPEG", quality=95), LOC)
    assert out.shape == (512, 512, 3)
    assert np.abs(out.astype(int) - photo.astype(int)).mean() < 6.0


def test_decode_16_bit_gray_png_keeps_its_tones() -> None:
    ramp = np.tile(np.linspace(0, 65535, 400).astype(np.uint16), (300, 1))
    out = decode_image(png_bytes(ramp), LOC)
    assert out.shape == (300, 400, 3)
    expected = (ramp >> 8).astype(np.uint8)
    assert np.abs(out[..., 1].astype(int) - expected.astype(int)).max() <= 1
    assert out[:, 0].max() == 0 and out[:, -1].min() == 255
    assert 100 < out.mean() < 155  # a ramp, not a clipped white sheet


@pytest.mark.parametrize(("orientation", "k"), [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_is_honoured(photo: np.ndarray, orientation: int, k: int) -> None:
    stored = photo[:, :384]  # 384 wide, 512 tall: rotation is visible in the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _save(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    out = decode_image(data, LOC)
    upright = np.rot90(stored, k=k)
    assert out.shape == upright.shape
    assert np.abs(out.astype(int) - upright.astype(int)).mean() < 3.0


# Refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [b"GIF89a" + b"\0" * 100, b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"", b"RIFF\0\0\0\0WEBPVP8 "],
)
def test_non_image_refused(data: bytes) -> None:
    with pytest.raises(InputError) as exc:
        decode_image(data, ["body", "tail_image_url"])
    item = only_error(exc)
    assert item["loc"] == ["body", "tail_image_url"]
    assert item["type"] == "image_format"
    assert "JPEG or PNG" in item["msg"]


def test_sniff_image_type(photo: np.ndarray, photo_png: bytes) -> None:
    assert sniff_image_type(photo_png) == "image/png"
    assert sniff_image_type(jpeg_bytes(photo)) == "image/jpeg"
    assert sniff_image_type(b"GIF89a") is None


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated_file_refused(photo: np.ndarray, photo_png: bytes, fmt: str) -> None:
    data = photo_png if fmt == "png" else jpeg_bytes(photo)
    with pytest.raises(InputError) as exc:
        decode_image(data[: len(data) // 2], LOC)
    item = only_error(exc)
    assert item["loc"] == LOC and item["type"] == "image_decode"
    assert "truncated" in item["msg"]


def test_garbage_after_png_signature_refused() -> None:
    with pytest.raises(InputError) as exc:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x13" * 200, LOC)
    assert only_error(exc)["type"] == "image_decode"


@pytest.mark.parametrize(("w", "h"), [(20000, 20000), (7000, 7000), (100_000, 500)])
def test_decompression_bomb_refused_from_header(w: int, h: int) -> None:
    # The body is not even valid zlib: a refusal that came after decoding would say "corrupt" instead.
    data = png_declaring(w, h)
    assert len(data) < 200
    t0 = time.monotonic()
    with pytest.raises(InputError) as exc:
        decode_image(data, LOC)
    assert time.monotonic() - t0 < 0.5
    item = only_error(exc)
    assert item["loc"] == LOC and item["type"] == "image_bomb"
    with pytest.raises(InputError) as exc:
        decode_mask(data, ["body", "static_mask_url"])
    assert only_error(exc)["type"] == "image_bomb"


def test_bomb_with_valid_body_also_refused() -> None:
    # 10000×10000 zero pixels compress to ~0.4 MB; decoding them would need 100 MB.
    packer = zlib.compressobj(1)
    row_block = bytes((10000 + 1) * 100)
    raw = b"".join(packer.compress(row_block) for _ in range(100)) + packer.flush()
    data = png_declaring(10000, 10000, raw)
    assert len(data) < 1_000_000
    with pytest.raises(InputError) as exc:
        decode_image(data, LOC, max_pixels=200_000_000)  # above the setting: Pillow's own bomb check answers
    assert only_error(exc)["type"] == "image_bomb"
    with pytest.raises(InputError) as exc:
        decode_image(data, LOC)
    assert only_error(exc)["type"] == "image_bomb"


def test_max_pixels_is_configurable(photo_png: bytes) -> None:
    with pytest.raises(InputError) as exc:
        decode_image(photo_png, LOC, max_pixels=512 * 512 - 1)
    item = only_error(exc)
    assert item["type"] == "image_bomb" and "512x512" in item["msg"]
    assert decode_image(photo_png, LOC, max_pixels=512 * 512).shape == (512, 512, 3)


def test_file_over_10_mb_refused() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_INPUT_BYTES
    with pytest.raises(InputError) as exc:
        decode_image(data, LOC)
    item = only_error(exc)
    assert item["type"] == "image_too_large" and "10 MB" in item["msg"]


# Kling's limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("w", "h", "error"),
    [
        (300, 300, None),
        (299, 400, "image_too_small"),
        (400, 299, "image_too_small"),
        (1000, 400, None),
        (400, 1000, None),
        (1000, 399, "image_aspect"),
        (399, 1000, "image_aspect"),
        (2000, 300, "image_aspect"),
    ],
)
def test_check_input_image(w: int, h: int, error: str | None) -> None:
    image = np.zeros((h, w, 3), np.uint8)
    if error is None:
        check_input_image(image, LOC)
        return
    with pytest.raises(InputError) as exc:
        check_input_image(image, LOC)
    item = only_error(exc)
    assert item["loc"] == LOC and item["type"] == error
    assert f"{w}x{h}" in item["msg"]


# Masks -----------------------------------------------------------------------------------------
def test_mask_from_luminance() -> None:
    gray = np.zeros((300, 400), np.uint8)
    gray[:, 200:] = 128
    gray[:, 100:200] = 127
    mask = decode_mask(png_bytes(gray), LOC)
    assert mask.dtype == bool and mask.shape == (300, 400)
    assert mask[:, 200:].all() and not mask[:, :200].any()
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[50:100, 60:90] = 255
    mask = decode_mask(png_bytes(rgb), LOC)
    assert mask.sum() == 50 * 30 and mask[50:100, 60:90].all()


def test_mask_from_alpha_ignores_colour() -> None:
    rgba = np.zeros((300, 400, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: luminance would select it all
    rgba[10:20, 30:50, 3] = 128
    rgba[20:30, 30:50, 3] = 127
    mask = decode_mask(png_bytes(rgba), LOC)
    assert mask.sum() == 10 * 20 and mask[10:20, 30:50].all()


def _soft_mask() -> np.ndarray:
    """A grey-level mask with soft (anti-aliased) edges: a disc fading out, plus a hard white bar."""
    yy, xx = np.mgrid[0:300, 0:400]
    disc = np.clip(255 - 3.0 * (np.hypot(xx - 120, yy - 150) - 60), 0, 255)
    gray = disc.astype(np.uint8)
    gray[20:40, 250:380] = 255
    return gray


def test_opaque_rgba_rgb_and_gray_copies_select_the_same_pixels() -> None:
    # What a browser canvas export and most editors write: black and white, alpha 255 everywhere.
    gray = _soft_mask()
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])
    want = gray >= 128
    assert 0 < want.sum() < want.size
    for name, data in [
        ("L", png_bytes(gray)),
        ("RGB", png_bytes(rgb)),
        ("RGBA", png_bytes(rgba)),
        ("LA", _save(Image.fromarray(gray).convert("LA"), "PNG")),
        ("P", _save(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")),
    ]:
        got = decode_mask(data, LOC)
        assert np.array_equal(got, want), (name, int(got.sum()), int(want.sum()))


def test_opaque_rgba_with_partly_transparent_alpha_above_half_reads_luminance() -> None:
    # Alpha between 128 and 254 is not "transparent": no pixel is below 128, so luminance decides.
    rgba = np.zeros((300, 400, 4), np.uint8)
    rgba[..., 3] = 200
    rgba[100:200, 100:150, :3] = 255
    mask = decode_mask(png_bytes(rgba), LOC)
    assert mask.sum() == 100 * 50 and mask[100:200, 100:150].all()


@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 0), (30, 60, 200), (255, 255, 255)])
def test_coloured_strokes_on_transparency_select_the_strokes(colour: tuple[int, int, int]) -> None:
    rgba = np.zeros((300, 400, 4), np.uint8)  # transparent black background
    rgba[50:80, 40:360, :3] = colour
    rgba[50:80, 40:360, 3] = 255
    rgba[200:210, 100:110, :3] = colour
    rgba[200:210, 100:110, 3] = 160  # semi-opaque still counts (alpha ≥ 128)
    mask = decode_mask(png_bytes(rgba), LOC)
    assert mask.sum() == 30 * 320 + 10 * 10
    assert mask[50:80, 40:360].all() and mask[200:210, 100:110].all()


def test_la_mask_with_transparency_reads_alpha() -> None:
    la = np.zeros((300, 400, 2), np.uint8)  # black strokes, transparent background
    la[10:60, 10:60, 1] = 255
    mask = decode_mask(_save(Image.fromarray(la, mode="LA"), "PNG"), LOC)
    assert mask.sum() == 50 * 50 and mask[10:60, 10:60].all()


def test_jpeg_mask_reads_luminance() -> None:
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[100:200, 200:300] = 255
    mask = decode_mask(jpeg_bytes(rgb, quality=95), LOC)
    assert abs(int(mask.sum()) - 100 * 100) < 200 and mask[110:190, 210:290].all()


def test_mask_from_palette_transparency() -> None:
    pal = Image.new("P", (400, 300), 0)
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    pal.paste(1, (0, 0, 100, 300))
    data = _save(pal, "PNG", transparency=0)  # index 0 (white) is transparent, index 1 (black) opaque
    mask = decode_mask(data, LOC)
    assert mask[:, :100].all() and not mask[:, 100:].any()


def test_mask_16_bit_gray_thresholds_at_half() -> None:
    gray = np.zeros((300, 400), np.uint16)
    gray[:, :200] = 127 * 257
    gray[:, 200:] = 128 * 257
    mask = decode_mask(png_bytes(gray), LOC)
    assert not mask[:, :200].any() and mask[:, 200:].all()


def test_mask_orientation_follows_exif() -> None:
    gray = np.zeros((300, 400), np.uint8)
    gray[:50, :] = 255  # a white band along the top of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    mask = decode_mask(_save(Image.fromarray(gray), "PNG", exif=exif), LOC)
    assert mask.shape == (400, 300)
    assert mask[:, -50:].all() and not mask[:, :-50].any()  # the top band is now the right edge


def _mask(w: int, h: int, fill: bool = True) -> np.ndarray:
    m = np.zeros((h, w), bool)
    if fill:
        m[h // 4 : h // 2, w // 4 : w // 2] = True
    return m


def test_check_mask_shapes_accepts_other_resolution_same_aspect() -> None:
    check_mask_shapes(
        (1024, 768),
        [(["body", "static_mask_url"], _mask(512, 384)), (["body", "dynamic_masks", 0, "mask_url"], _mask(512, 384))],
    )
    check_mask_shapes((1000, 667), [(["body", "static_mask_url"], _mask(300, 200))])  # rounding of sides


def test_check_mask_shapes_aspect() -> None:
    with pytest.raises(InputError) as exc:
        check_mask_shapes((1024, 768), [(["body", "static_mask_url"], _mask(512, 512))])
    item = only_error(exc)
    assert item["loc"] == ["body", "static_mask_url"] and item["type"] == "mask_aspect"
    assert "512x512" in item["msg"] and "1024x768" in item["msg"]


def test_check_mask_shapes_resolution_mismatch() -> None:
    with pytest.raises(InputError) as exc:
        check_mask_shapes(
            (1024, 768),
            [
                (["body", "static_mask_url"], _mask(512, 384)),
                (["body", "dynamic_masks", 0, "mask_url"], _mask(1024, 768)),
            ],
        )
    item = only_error(exc)
    assert item["loc"] == ["body", "dynamic_masks", 0, "mask_url"] and item["type"] == "mask_resolution"


def test_check_mask_shapes_empty_mask() -> None:
    with pytest.raises(InputError) as exc:
        check_mask_shapes((400, 300), [(["body", "dynamic_masks", 1, "mask_url"], _mask(400, 300, fill=False))])
    item = only_error(exc)
    assert item["loc"] == ["body", "dynamic_masks", 1, "mask_url"] and item["type"] == "mask_empty"
    assert "selects no pixel" in item["msg"]


def test_empty_opaque_rgba_mask_is_refused() -> None:
    # An all-black canvas export (alpha 255): nothing painted. Formerly alpha made it select everything.
    rgba = np.zeros((300, 400, 4), np.uint8)
    rgba[..., 3] = 255
    mask = decode_mask(png_bytes(rgba), LOC)
    assert not mask.any()
    with pytest.raises(InputError) as exc:
        check_mask_shapes((400, 300), [(["body", "static_mask_url"], mask)])
    assert only_error(exc)["loc"] == ["body", "static_mask_url"] and only_error(exc)["type"] == "mask_empty"


def test_full_mask_is_accepted_with_a_warning() -> None:
    full = np.ones((300, 400), bool)
    check_mask_shapes((400, 300), [(["body", "static_mask_url"], full)])  # accepted
    static = full_mask_warning(["body", "static_mask_url"], full)
    assert static is not None and static.startswith("static_mask_url: the mask selects every pixel")
    assert "stays still" in static
    dyn = full_mask_warning(["body", "dynamic_masks", 2, "mask_url"], full)
    assert dyn is not None and dyn.startswith("dynamic_masks[2].mask_url:") and "moves" in dyn
    partial = full.copy()
    partial[0, 0] = False
    assert full_mask_warning(["body", "static_mask_url"], partial) is None


def test_check_mask_shapes_reports_every_mask() -> None:
    with pytest.raises(InputError) as exc:
        check_mask_shapes(
            (1024, 768),
            [
                (["body", "static_mask_url"], _mask(300, 300)),  # wrong aspect
                (["body", "dynamic_masks", 0, "mask_url"], _mask(512, 384)),  # fine: sets the resolution
                (["body", "dynamic_masks", 1, "mask_url"], _mask(1024, 768)),  # other resolution
                (["body", "dynamic_masks", 2, "mask_url"], _mask(512, 384, fill=False)),  # empty
            ],
        )
    got = {(tuple(e["loc"]), e["type"]) for e in exc.value.errors}
    assert got == {
        (("body", "static_mask_url"), "mask_aspect"),
        (("body", "dynamic_masks", 1, "mask_url"), "mask_resolution"),
        (("body", "dynamic_masks", 2, "mask_url"), "mask_empty"),
    }
