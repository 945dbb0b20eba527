"""Before/after contact sheets of the motion engine for the README (generated, never hand-made).

    .venv/bin/python scripts/contact_sheets.py [--before a250ea5] [--out docs/images]

"Before" is the engine at git revision ``--before`` (extracted with ``git archive`` into a
temporary folder), "after" is the working tree's. Both render the same scenes
(``tests/motion_scenes.py``: photos from scikit-image) in child processes, each with its own
``kinema`` on ``sys.path``; the sheets show chosen frames, the top row before, the bottom row
after, and are written as JPEG files named ``motion-<scene>.jpg``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: scene name -> (frames shown, crop (x0, y0, x1, y1) in output pixels or None, caption)
SCENES: dict[str, tuple[tuple[int, ...], tuple[int, int, int, int] | None, str]] = {
    "fill": ((0, 75, 149), None, "brush: an object pasted on a photo moves away; the hole it leaves"),
    "fill-zoom": ((149,), (760, 20, 1080, 380), "the same hole at the last frame, enlarged"),
    "loose": ((0, 149), None, "brush: the same object painted loosely (18 px too wide)"),
    "zigzag": ((0, 149), None, "brush: a 5-point zig-zag; the drawn line is the tracked path"),
    "pan": ((0, 37, 74, 112, 149), None, "tail: a camera pan of a quarter frame"),
    "unrelated": ((0, 60, 74, 90, 149), None, "tail: two unrelated photos"),
    "aspect": ((0, 149), None, "tail: a tail image of another aspect ratio"),
}

CHILD = r"""
import sys
import numpy as np
sys.path[:0] = [{src!r}, {tests!r}]
import motion_scenes as ms
from kinema.engines.motion import frames
scene, keep, out = {scene!r}, {keep!r}, {out!r}
from skimage import data
from kinema.engines import EngineInputs
make = {{
    "fill": lambda: ms.pasted_object().inputs,
    "fill-zoom": lambda: ms.pasted_object().inputs,
    "loose": lambda: ms.pasted_object(loose_px=10).inputs,
    "zigzag": ms.zigzag_path,
    "pan": lambda: ms.camera_pair("pan").inputs,
    "unrelated": ms.unrelated_pair,
    "aspect": lambda: EngineInputs(prompt="", image=data.astronaut(), tail_image=np.ascontiguousarray(data.rocket())),
}}
kept, track = {{}}, []
for i, f in enumerate(frames(make[scene]())):
    if i in keep:
        kept[str(i)] = f
    if scene == "zigzag":
        track.append(f)
if scene == "zigzag":
    from motion_checks import track_offsets
    import cv2
    inputs = ms.zigzag_path()
    mask = cv2.resize(inputs.dynamic_brushes[0].mask.astype(np.uint8), (720, 720), interpolation=cv2.INTER_NEAREST) > 0
    offsets, _ = track_offsets(track, mask)
    ys, xs = np.nonzero(mask)
    kept["path"] = offsets + np.array([xs.mean(), ys.mean()])
np.savez_compressed(out, **kept)
"""


def extract(revision: str, into: Path) -> Path:
    """The ``src`` folder of ``revision``, unpacked under ``into``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def render(src: Path, scene: str, keep: tuple[int, ...], out: Path) -> dict[str, np.ndarray]:
    code = CHILD.format(src=str(src), tests=str(ROOT / "tests"), scene=scene, keep=set(keep), out=str(out))
    subprocess.run([sys.executable, "-c", code], check=True)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    size = max(0.8, img.shape[1] / 560)  # readable once the sheet is scaled to its width
    at = (12, int(12 + 26 * size))
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), int(5 * size), cv2.LINE_AA)
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), int(2 * size), cv2.LINE_AA)
    return out


def sheet(
    rows: list[tuple[str, dict[str, np.ndarray]]],
    keep: tuple[int, ...],
    crop: tuple[int, int, int, int] | None,
    width: int = 1600,
) -> np.ndarray:
    lines = []
    for name, shots in rows:
        tiles = []
        for i in keep:
            f = shots[str(i)]
            if "path" in shots:
                pts = np.rint(shots["path"]).astype(np.int32).reshape(-1, 1, 2)
                f = cv2.polylines(f.copy(), [pts], False, (255, 255, 0), 3, cv2.LINE_AA)
            if crop is not None:
                x0, y0, x1, y1 = crop
                f = cv2.resize(f[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            tiles.append(label(f, f"{name}  frame {i}"))
        lines.append(np.hstack(tiles))
    grid = np.vstack(lines)
    scale = min(1.0, width / grid.shape[1])
    return cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="a250ea5", help="git revision of the 'before' engine")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--scenes", nargs="*", default=list(SCENES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        before = extract(args.before, Path(tmp) / "before")
        after = ROOT / "src"
        for scene in args.scenes:
            keep, crop, caption = SCENES[scene]
            rows = [
                (f"before ({args.before})", render(before, scene, keep, Path(tmp) / f"b-{scene}.npz")),
                ("after", render(after, scene, keep, Path(tmp) / f"a-{scene}.npz")),
            ]
            img = sheet(rows, keep, crop)
            path = args.out / f"motion-{scene}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])
            print(f"{path}: {caption}")


if __name__ == "__main__":
    main()
