"""Requests from local files, and running one in-process through the engine.

A request is a dict in fal's input schema. Its URL fields may name local files on the command
line or in a batch file; :func:`resolve_files` turns them into data URIs (or uploads them).
"""

from __future__ import annotations

import base64
import mimetypes
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinema.cli.main import CliError
from kinema.errors import EngineLoadError, InputError, KinemaError, error_item
from kinema.settings import Settings

__all__ = [
    "URL_FIELDS",
    "LocalRenderer",
    "LocalResult",
    "check_files",
    "data_uri",
    "format_detail",
    "is_url",
    "parse_trajectory",
    "render_local",
    "resolve_files",
    "url_fields",
]

#: Top-level fields that hold a URL (``dynamic_masks[i].mask_url`` too).
URL_FIELDS = ("image_url", "tail_image_url", "static_mask_url")

Loc = tuple[str | int, ...]
#: Turns a local file into a URL for the request: ``convert(path, loc) -> url``.
Converter = Callable[[Path, Loc], str]


def is_url(value: str) -> bool:
    low = value[:16].lower()
    return low.startswith(("http://", "https://", "data:"))


def _mime(path: Path, data: bytes) -> str:
    from kinema.media.images import sniff_image_type

    return sniff_image_type(data) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def data_uri(path: Path) -> str:
    """``data:<mime>;base64,...`` of a file; the type from its magic bytes, else its name."""
    data = path.read_bytes()
    return f"data:{_mime(path, data)};base64," + base64.b64encode(data).decode("ascii")


def url_fields(payload: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Every (loc, value) of a string URL field in a request dict."""
    for name in URL_FIELDS:
        value = payload.get(name)
        if isinstance(value, str):
            yield ("body", name), value
    masks = payload.get("dynamic_masks")
    if isinstance(masks, list):
        for i, mask in enumerate(masks):
            if isinstance(mask, dict) and isinstance(mask.get("mask_url"), str):
                yield ("body", "dynamic_masks", i, "mask_url"), mask["mask_url"]


def _set(payload: dict[str, Any], loc: Loc, value: str) -> None:
    target: Any = payload
    for part in loc[1:-1]:
        target = target[part]
    target[loc[-1]] = value


def _local_path(value: str, base_dir: Path | None) -> Path:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def check_files(payload: Mapping[str, Any], base_dir: Path | None = None) -> None:
    """Raise :class:`InputError` (``file_not_found``) for every local path that is not a readable file."""
    errors = []
    for loc, value in url_fields(payload):
        if is_url(value):
            continue
        path = _local_path(value, base_dir)
        if not path.is_file():
            errors.append(error_item(list(loc), f"no such file: {path}", "file_not_found"))
        elif not os.access(path, os.R_OK):
            errors.append(error_item(list(loc), f"cannot read file: {path}", "file_unreadable"))
    if errors:
        raise InputError(errors)


def resolve_files(
    payload: Mapping[str, Any], base_dir: Path | None = None, convert: Converter | None = None
) -> dict[str, Any]:
    """A copy of ``payload`` whose local paths (relative to ``base_dir``) became URLs.

    ``convert`` defaults to :func:`data_uri`. URLs and data URIs pass through unchanged.
    """
    check_files(payload, base_dir)
    out: dict[str, Any] = {**payload}
    if isinstance(out.get("dynamic_masks"), list):
        out["dynamic_masks"] = [dict(m) if isinstance(m, dict) else m for m in out["dynamic_masks"]]
    for loc, value in list(url_fields(out)):
        if not is_url(value):
            path = _local_path(value, base_dir)
            _set(out, loc, convert(path, loc) if convert is not None else data_uri(path))
    return out


def parse_trajectory(text: str, flag: str) -> list[dict[str, int]]:
    """``"x,y x,y ..."`` (pixels, origin bottom-left) → ``[{"x": .., "y": ..}, ...]``."""
    points = []
    for token in text.replace(";", " ").split():
        xs, sep, ys = token.partition(",")
        try:
            if not sep:
                raise ValueError
            points.append({"x": int(xs), "y": int(ys)})
        except ValueError:
            raise CliError(f'{flag}: "{token}" is not an x,y pair of integers (e.g. "100,200 300,250")') from None
    if not points:
        raise CliError(f'{flag}: no points given (e.g. "100,200 300,250")')
    return points


def _loc_text(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc)


def format_detail(detail: Any, flags: Mapping[Loc, str] | None = None) -> str:
    """A 422 ``detail`` list as one line: ``--cfg-scale: body.cfg_scale: Input should be ...``.

    ``flags`` names the command-line option behind a loc (longest matching prefix wins).
    """
    if not isinstance(detail, list):
        return str(detail)
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        loc = tuple(item.get("loc") or ())
        text = f"{_loc_text(loc)}: {item.get('msg', '')}"
        flag = None
        for n in range(len(loc), 0, -1):
            flag = (flags or {}).get(loc[:n])
            if flag:
                break
        parts.append(f"{flag}: {text}" if flag else text)
    return "; ".join(parts)


@dataclass(frozen=True)
class LocalResult:
    """What an in-process render produced."""

    path: Path
    width: int
    height: int
    fps: int
    frames: int
    wall_s: float


class LocalRenderer:
    """The request pipeline in this process, its engine loaded once (for one request or a whole batch)."""

    def __init__(self, engine: str | None = None):
        # Imported here: the engine seam and pipeline pull in NumPy, OpenCV and PyAV (~0.5 s), which
        # `kinema generate --server` and `kinema batch --server` never need.
        from kinema.engines import load_engine
        from kinema.pipeline import Pipeline

        settings = Settings.from_env()
        if engine:
            settings = settings.replace(engine=engine)
        try:
            loaded = load_engine(settings.engine, settings, settings.device_for(0))
        except EngineLoadError as exc:
            raise CliError(f"cannot load engine {settings.engine!r}: {exc}") from None
        self.pipeline = Pipeline(settings, loaded)

    def render(
        self,
        payload: Mapping[str, Any],
        out: Path,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> LocalResult:
        """Validate, fetch and render one request, writing the MP4 to ``out`` (only once complete).

        Raises :class:`InputError` for invalid input and :class:`CliError` when the engine fails.
        """
        from kinema.engines import (
            Progress,  # loaded by __init__ already; local for the reason above
        )

        t0 = time.monotonic()
        say = on_log or (lambda message: None)
        inputs = self.pipeline.prepare(payload, log=say, warn=lambda message: say(f"warning: {message}"))

        def progress(p: Progress) -> None:
            if on_progress is not None and p.stage == "encode":
                on_progress(p.step, p.total)

        # Render to a partial file beside the output, then move it into place.
        partial = out.with_name(f".{out.name}.partial.mp4")
        try:
            clip = self.pipeline.render(
                inputs, partial, progress=progress, should_cancel=lambda: False, log=say, started=t0
            )
            os.replace(partial, out)
        except KinemaError as exc:
            if isinstance(exc, InputError):
                raise
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            raise CliError(f"the engine failed: {reason}") from None
        finally:
            partial.unlink(missing_ok=True)
        return LocalResult(out, clip.width, clip.height, clip.fps, clip.frames, time.monotonic() - t0)


def render_local(
    payload: Mapping[str, Any],
    out: Path,
    *,
    engine: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_log: Callable[[str], None] | None = None,
    renderer: LocalRenderer | None = None,
) -> LocalResult:
    """One request in this process (``renderer`` reuses an engine already loaded, e.g. by a batch)."""
    # Check the request before loading the engine: a bad request should not wait for a model to load.
    from kinema.schema import (
        parse_input,  # pydantic's schema build is paid only by in-process renders
    )

    parse_input(dict(payload))
    return (renderer or LocalRenderer(engine)).render(payload, out, on_progress=on_progress, on_log=on_log)
