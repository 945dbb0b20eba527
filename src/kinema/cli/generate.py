"""``kinema generate IMAGE --prompt TEXT --out FILE.mp4``: one video, in-process or through a server.

Without ``--server`` (or ``KINEMA_SERVER``) the engine runs in this process. With it, the request
goes through the server's fal queue and the video is downloaded. Progress goes to stderr, a one-line
summary to stdout.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinema.cli.local import Loc, parse_trajectory
from kinema.cli.main import CliError

__all__ = ["register", "build_payload", "FLAGS", "probe_video", "contact_sheet", "summary_line", "VideoInfo"]

#: The command-line option behind each request field, for error messages.
FLAGS: dict[Loc, str] = {
    ("body",): "request",
    ("body", "prompt"): "--prompt",
    ("body", "image_url"): "IMAGE",
    ("body", "duration"): "--duration",
    ("body", "negative_prompt"): "--negative-prompt",
    ("body", "cfg_scale"): "--cfg-scale",
    ("body", "tail_image_url"): "--tail-image",
    ("body", "static_mask_url"): "--static-mask",
    ("body", "dynamic_masks"): "--dynamic-mask",
    ("body", "seed"): "--seed",
}


def _flags(n_masks: int) -> dict[Loc, str]:
    flags = dict(FLAGS)
    for i in range(n_masks):
        flags[("body", "dynamic_masks", i)] = f"--dynamic-mask #{i + 1}"
        flags[("body", "dynamic_masks", i, "mask_url")] = f"--dynamic-mask #{i + 1}"
        flags[("body", "dynamic_masks", i, "trajectories")] = f"--trajectory #{i + 1}"
    return flags


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from kinema.cli.remote import add_server_args

    p = sub.add_parser(
        "generate",
        help="make one video from an image (in-process, or through --server)",
        description="Make one video from an image. Files may be local paths or http(s)/data URLs. "
        "Trajectory points are pixels of the input image, origin bottom-left, y up.",
    )
    p.add_argument("image", metavar="IMAGE", help="input image: a local file or an http(s):// URL")
    p.add_argument("--prompt", required=True, help="what should happen in the video")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.mp4", help="where to write the video")
    p.add_argument("--duration", choices=("5", "10"), default=None, help="seconds (default 5)")
    p.add_argument("--negative-prompt", default=None, help="what to avoid")
    p.add_argument("--cfg-scale", type=float, default=None, help="prompt adherence, 0 to 1 (default 0.5)")
    p.add_argument("--tail-image", default=None, metavar="IMAGE", help="the last frame to move towards")
    p.add_argument("--static-mask", default=None, metavar="MASK", help="motion brush: the area that stays still")
    p.add_argument(
        "--dynamic-mask",
        action="append",
        default=[],
        metavar="MASK",
        help="motion brush: an area that moves; follow each with --trajectory (up to 6)",
    )
    p.add_argument(
        "--trajectory",
        action="append",
        default=[],
        metavar='"X,Y X,Y ..."',
        help="the path of the preceding --dynamic-mask: 2-77 points in pixels, origin bottom-left",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic effects (kinema extension)")
    p.add_argument(
        "--preview",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="also write a contact sheet of frames from the video",
    )
    p.add_argument("--preview-frames", type=int, default=8, metavar="N", help="frames on the contact sheet")
    add_server_args(p)
    p.add_argument("--local", action="store_true", help="run in-process even if KINEMA_SERVER is set")
    p.add_argument(
        "--upload",
        action="store_true",
        help="with --server: upload local files to the server's /files/upload (kinema servers) "
        "instead of sending data URIs",
    )
    p.add_argument("--engine", default=None, help="in-process engine module:function (env KINEMA_ENGINE)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (-v lines still show)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the engine's or server's log lines")
    p.set_defaults(func=run)


def build_payload(args: argparse.Namespace) -> dict[str, Any]:
    """A request in fal's input schema from the flags; paths stay as given (see ``resolve_files``)."""
    if len(args.dynamic_mask) != len(args.trajectory):
        raise CliError(
            f"--dynamic-mask given {len(args.dynamic_mask)} time(s) but --trajectory {len(args.trajectory)}: "
            "give one --trajectory after each --dynamic-mask"
        )
    payload: dict[str, Any] = {"prompt": args.prompt, "image_url": args.image}
    optional = {
        "duration": args.duration,
        "negative_prompt": args.negative_prompt,
        "cfg_scale": args.cfg_scale,
        "tail_image_url": args.tail_image,
        "static_mask_url": args.static_mask,
        "seed": args.seed,
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    if args.dynamic_mask:
        payload["dynamic_masks"] = [
            {"mask_url": mask, "trajectories": parse_trajectory(traj, f"--trajectory #{i + 1}")}
            for i, (mask, traj) in enumerate(zip(args.dynamic_mask, args.trajectory, strict=True))
        ]
    return payload


def run(args: argparse.Namespace) -> int:
    from kinema.cli.local import format_detail, render_local, resolve_files
    from kinema.cli.progress import ProgressBar
    from kinema.cli.remote import QueueClient, RemoteError, run_remote, server_and_key
    from kinema.errors import InputError
    from kinema.schema import parse_input

    t0 = time.monotonic()
    # 1. Check the flags and files.
    out: Path = args.out
    for flag, path in (("--out", out), ("--preview", args.preview)):
        if path is not None and not path.parent.is_dir():
            raise CliError(f"{flag}: directory does not exist: {path.parent}")
        if path is not None and path.is_dir():
            raise CliError(f"{flag}: is a directory: {path}")
    if args.preview_frames < 1:
        raise CliError("--preview-frames must be at least 1")
    payload = build_payload(args)
    flags = _flags(len(args.dynamic_mask))
    if args.local and args.server:
        raise CliError("--local and --server exclude each other")
    remote = None if args.local else server_and_key(args, required=False)
    bar = ProgressBar(enabled=not args.quiet)
    request_id = None

    try:
        # 2. Local files become data URIs (or uploads); the schema is checked before anything is sent.
        body = resolve_files(payload, convert=lambda path, loc: "data:,")
        parse_input(body)
        if remote is None:
            body = resolve_files(payload)
            # 3a. Render in this process.
            render_local(
                body,
                out,
                engine=args.engine,
                on_progress=lambda step, total: bar.update("rendering", step, total, "frames"),
                on_log=bar.log if args.verbose else None,
            )
        else:
            # 3b. Send through the server's queue and download the video.
            with QueueClient(*remote) as client:
                convert = (lambda path, loc: client.upload(path)) if args.upload else None
                body = resolve_files(payload, convert=convert)
                sent = run_remote(
                    client,
                    body,
                    out,
                    bar=bar,
                    log=bar.log if args.verbose else None,
                    on_submitted=lambda s: bar.note(f"request {s['request_id']} submitted"),
                )
                request_id = sent.request_id
    except InputError as exc:
        raise CliError(format_detail(exc.errors, flags)) from None
    except RemoteError as exc:
        raise CliError(exc.describe(flags)) from None
    finally:
        bar.close()

    # 4. Preview and summary.
    info = probe_video(out)
    if args.preview is not None:
        contact_sheet(out, args.preview, count=args.preview_frames)
    print(summary_line(out, info, time.monotonic() - t0, request_id, args.preview))
    return 0


# -- output files -----------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    size: int


def probe_video(path: Path) -> VideoInfo:
    """Size, frame rate, frame count and duration of an MP4 (from its header)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = int(stream.frames or 0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / 1_000_000
            if not frames and fps:
                frames = int(round(duration * fps))
            return VideoInfo(stream.width, stream.height, fps, frames, duration, path.stat().st_size)
    except (av.FFmpegError, IndexError) as exc:
        raise CliError(f"{path} is not a readable video: {exc}") from None


def contact_sheet(
    video: Path, dest: Path, *, count: int = 8, columns: int = 4, thumb_width: int = 320
) -> tuple[int, ...]:
    """Write a PNG grid of ``count`` evenly spaced frames with their times; returns the frame indices.

    Decodes the video once, keeping only the chosen frames.
    """
    import av
    from PIL import Image, ImageDraw

    info = probe_video(video)
    n = max(info.frames, 1)
    count = min(count, n)
    wanted = tuple(sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)}))
    thumb_width = min(thumb_width, info.width)
    thumb_h = max(2, round(info.height * thumb_width / info.width))
    thumbs: dict[int, Image.Image] = {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                # PyAV's stubs leave VideoFrame.to_image unannotated.
                picture = frame.to_image()  # type: ignore[no-untyped-call]
                thumbs[i] = picture.resize((thumb_width, thumb_h), Image.Resampling.LANCZOS)
            if i >= wanted[-1]:
                break
    shown = [i for i in wanted if i in thumbs]
    if not shown:
        raise CliError(f"{video}: no frames to preview")
    columns = min(columns, len(shown))
    rows = -(-len(shown) // columns)
    gap = 4
    sheet = Image.new(
        "RGB", (columns * thumb_width + (columns + 1) * gap, rows * thumb_h + (rows + 1) * gap), (24, 24, 24)
    )
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(shown):
        x = gap + (k % columns) * (thumb_width + gap)
        y = gap + (k // columns) * (thumb_h + gap)
        sheet.paste(thumbs[i], (x, y))
        label = f"#{i}  {i / info.fps:.2f}s" if info.fps else f"#{i}"
        draw.rectangle((x, y, x + 6 * len(label) + 6, y + 14), fill=(0, 0, 0))
        draw.text((x + 3, y + 2), label, fill=(255, 255, 255))
    sheet.save(dest, format="PNG")
    return tuple(shown)


def summary_line(
    path: Path, info: VideoInfo, wall_s: float, request_id: str | None = None, preview: Path | None = None
) -> str:
    from kinema.cli.progress import format_bytes

    parts = [
        str(path),
        format_bytes(info.size),
        f"{info.duration_s:.2f} s",
        f"{info.width}x{info.height}",
        f"{info.frames} frames @ {info.fps:g} fps",
        f"wall {wall_s:.1f} s",
    ]
    if request_id:
        parts.append(f"request {request_id}")
    if preview is not None:
        parts.append(f"preview {preview}")
    return "  ".join(parts)
