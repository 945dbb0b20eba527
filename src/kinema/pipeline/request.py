"""One request through the engine: parse → fetch → decode → frames → contract → encode (→ store).

The worker runs :meth:`Pipeline.run` (the clip goes to :class:`~kinema.media.storage.Storage`);
``kinema generate`` / ``kinema batch`` run :meth:`Pipeline.render` to a file of their choosing.
Both share the engine the pipeline was built with, loaded once.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from kinema.engines import Engine, EngineInputs, LogFn, Progress, ProgressFn
from kinema.engines.geometry import output_size, resize_image
from kinema.errors import Cancelled, EngineError, KinemaError
from kinema.media.encode import VideoWriter
from kinema.media.fetch import Fetcher, LocalReader
from kinema.media.inputs import WarnFn, load_inputs
from kinema.media.storage import Storage
from kinema.pipeline.ahead import ahead
from kinema.pipeline.contract import conform
from kinema.schema import parse_input
from kinema.settings import Settings

__all__ = ["FRAMES_AHEAD", "Clip", "Pipeline", "Stored"]

#: Frames the engine may make ahead of the encoder. The background producer (``ahead.py``) gets
#: ahead while frames are cheap and spends that lead where they are dear: the motion engine's tail
#: renders at 1.41 x encode-only with 8 ahead, 1.36 with 24, 1.33 with 48 (medians of 7, one run on
#: 2 cores). 24 frames of 1280 x 720 hold 66 MB.
FRAMES_AHEAD = 24


@dataclass(frozen=True)
class Clip:
    """What a render produced (the file is complete)."""

    path: Path
    width: int
    height: int
    fps: int
    frames: int
    #: Seconds from the start of the request to the encoded file.
    wall_s: float
    #: Seconds of engine, contract and encoder (the clip's own cost, without fetching and decoding inputs).
    render_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Stored:
    """A clip handed to storage: the fal ``File`` of the video."""

    clip: Clip
    file: dict[str, Any]


class Pipeline:
    """The request pipeline around one loaded engine."""

    def __init__(self, settings: Settings, engine: Engine, *, local: LocalReader | None = None):
        self.settings = settings
        self.engine = engine
        self._fetcher = Fetcher(settings, local=local)

    # 1-3. Parse, fetch, decode ---------------------------------------------------------
    def prepare(
        self,
        payload: Mapping[str, Any],
        *,
        log: LogFn,
        progress: ProgressFn | None = None,
        warn: WarnFn | None = None,
    ) -> EngineInputs:
        """The request's inputs, validated, fetched and decoded; :class:`InputError` (422) otherwise."""
        req = parse_input(dict(payload))
        log("fetching inputs")
        inputs = load_inputs(req, self._fetcher.fetch, max_pixels=self.settings.max_image_pixels, warn=warn or log)
        if progress is not None:
            progress(Progress(1, 1, "decode"))
        h, w = inputs.image.shape[:2]
        log(f"input image {w}x{h}; rendering {inputs.num_frames} frames")
        return inputs

    # 4-6. Engine frames → contract → encode ------------------------------------------
    def render(
        self,
        inputs: EngineInputs,
        output: Path,
        *,
        progress: ProgressFn,
        should_cancel: Callable[[], bool],
        log: LogFn,
        started: float | None = None,
    ) -> Clip:
        """Encode the clip to ``output``; nothing is left there unless it completes.

        Engine failures that are not kinema errors become :class:`EngineError` (500 ``engine_error``).
        """
        t_render = time.monotonic()
        t0 = t_render if started is None else started
        image = inputs.image
        size = output_size(image.shape[1], image.shape[0], self.settings.output_short_side)
        count = inputs.num_frames
        first = resize_image(image, size)
        output.parent.mkdir(parents=True, exist_ok=True)
        # The engine and the contract run ahead on a thread; what they log or report is handed to the
        # caller's thread (callers such as the CLI's progress display are not thread-safe).
        notes: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

        def flush() -> None:
            while not notes.empty():
                notes.get()()

        def later_log(message: str) -> None:
            notes.put(partial(log, message))

        def later_progress(p: Progress) -> None:
            notes.put(partial(progress, p))

        try:
            source = self.engine.frames(
                inputs, size=size, progress=later_progress, should_cancel=should_cancel, log=later_log
            )
            made = conform(
                source, fps=float(self.engine.fps), first=first, count=count, progress=later_progress, log=later_log
            )
            with (
                VideoWriter(output, size[0], size[1], 30) as writer,
                ahead(made, depth=FRAMES_AHEAD, waiting=flush, background=True) as frames,
            ):
                for i, frame in enumerate(frames):
                    flush()
                    if should_cancel():
                        raise Cancelled(f"cancelled at frame {i} of {count}")
                    writer.write(frame)
                    progress(Progress(i + 1, count, "encode"))
        except (KinemaError, Cancelled):
            output.unlink(missing_ok=True)
            raise
        except Exception as exc:
            output.unlink(missing_ok=True)
            raise EngineError(f"The engine failed: {type(exc).__name__}: {exc}") from exc
        finally:
            flush()
        done = time.monotonic()
        return Clip(output, size[0], size[1], 30, count, done - t0, done - t_render)

    # All of it, ending in storage -----------------------------------------------------
    def run(
        self,
        payload: Mapping[str, Any],
        *,
        storage: Storage,
        base_url: str,
        work_path: Path,
        file_name: str,
        progress: ProgressFn,
        should_cancel: Callable[[], bool],
        log: LogFn,
        warn: WarnFn | None = None,
    ) -> Stored:
        """Render ``payload`` to ``work_path`` and hand it to ``storage.put`` (which takes the file).

        ``warn`` receives warnings about accepted inputs (a mask that selects every pixel); ``log`` if not given.
        """
        t0 = time.monotonic()
        inputs = self.prepare(payload, log=log, progress=progress, warn=warn)
        if should_cancel():
            raise Cancelled("cancelled before rendering")
        clip = self.render(inputs, work_path, progress=progress, should_cancel=should_cancel, log=log, started=t0)
        try:
            file = storage.put(work_path, file_name=file_name, content_type="video/mp4", base_url=base_url)
        finally:
            if work_path.exists():
                os.unlink(work_path)
        log(
            f"done: {clip.frames} frames {clip.width}x{clip.height} in {clip.wall_s:.2f} s "
            f"(render {clip.render_s * 1000:.1f} ms)"
        )
        return Stored(clip, file)
