"""``kinema generate``: in-process renders and renders through a real kinema server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from server import ROOT, free_port, running_server

from kinema.cli.main import main
from kinema.media.encode import read_frames

KINEMA = str(ROOT / ".venv" / "bin" / "kinema")
ENGINE = f"{ROOT}/tests/engines/cli_fixture.py:render"
FAILING = f"{ROOT}/tests/engines/failing.py:render"
#: The output contract for the square test photo at the fixture engines' short side (KINEMA_OUTPUT_SHORT_SIDE=90).
FRAME_SIZE = (90, 90)  # (height, width)
SHORT_SIDE = "90"


# -- helpers shared by the CLI test files --------------------------------------------------------
def write_photo(path: Path, size: tuple[int, int] | None = None) -> Path:
    """The astronaut photograph as a PNG (optionally resized to ``size`` = (w, h))."""
    from skimage import data

    img = Image.fromarray(data.astronaut())
    if size is not None:
        img = img.resize(size)
    img.save(path)
    return path


def write_mask(path: Path, box: tuple[int, int, int, int], size: tuple[int, int] = (512, 512)) -> Path:
    """A black PNG mask with the white rectangle ``box`` = (x0, y0, x1, y1) in image rows from the top."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    Image.fromarray(mask).save(path)
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KINEMA_SERVER", "KINEMA_KEY", "FAL_KEY"}}
    env.update({"KINEMA_ENGINE": ENGINE, "KINEMA_OUTPUT_SHORT_SIDE": SHORT_SIDE, **extra})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KINEMA, *args], capture_output=True, text=True, timeout=timeout, env=env or cli_env(), cwd=str(ROOT)
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KINEMA_SERVER", "KINEMA_KEY", "FAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KINEMA_ENGINE", ENGINE)
    monkeypatch.setenv("KINEMA_OUTPUT_SHORT_SIDE", SHORT_SIDE)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "astronaut.png")


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("kinema: error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0][len("kinema: error: ") :]


# -- in-process ----------------------------------------------------------------------------------
def test_generate_subprocess_writes_video_preview_and_summary(tmp_path: Path, image: Path) -> None:
    out, preview = tmp_path / "out.mp4", tmp_path / "sheet.png"
    proc = run_cli("generate", str(image), "--prompt", "a wave", "--out", str(out), "--preview", str(preview))
    assert proc.returncode == 0, proc.stderr
    frames = read_frames(out)
    assert frames.shape == (150, *FRAME_SIZE, 3)
    # One summary line on stdout: path, size, duration, frames, wall time.
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(str(out)) and "5.00 s" in lines[0] and "150 frames" in lines[0]
    assert "wall" in lines[0] and "90x90" in lines[0]
    # The progress bar reached the end on stderr.
    assert "150/150 frames" in proc.stderr
    # The contact sheet: 8 frames, 4 columns x 2 rows, each cell showing its frame.
    sheet = np.asarray(Image.open(preview).convert("RGB")).astype(float)
    gap, (th, tw) = 4, FRAME_SIZE
    assert sheet.shape == (2 * th + 3 * gap, 4 * tw + 5 * gap, 3)
    picks = [round(i * 149 / 7) for i in range(8)]
    for k, idx in enumerate(picks):
        y, x = gap + (k // 4) * (th + gap), gap + (k % 4) * (tw + gap)
        cell = sheet[y + 20 : y + th, x : x + tw]  # below the label
        own = np.abs(cell - frames[idx][20:].astype(float)).mean()
        other = np.abs(cell - frames[(idx + 75) % 150][20:].astype(float)).mean()
        assert own < 6 and own < other, (k, own, other)


def test_every_flag_reaches_the_engine(
    tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("KINEMA_CLI_RECORD", str(record))
    static = write_mask(tmp_path / "static.png", (0, 400, 512, 512))
    m1 = write_mask(tmp_path / "m1.png", (100, 100, 200, 200))
    m2 = write_mask(tmp_path / "m2.png", (300, 300, 350, 400))
    out = tmp_path / "out.mp4"
    rc = main(
        [
            "generate",
            str(image),
            "--prompt",
            "brushes",
            "--out",
            str(out),
            "--duration",
            "10",
            "--negative-prompt",
            "no blur",
            "--cfg-scale",
            "0.8",
            "--seed",
            "7",
            "--static-mask",
            str(static),
            "--dynamic-mask",
            str(m1),
            "--trajectory",
            "150,350 300,360 400,300",
            "--dynamic-mask",
            str(m2),
            "--trajectory",
            "325,162 100,50",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    import json

    got = json.loads((record / "brushes.json").read_text())
    assert got["duration_s"] == 10 and got["negative_prompt"] == "no blur"
    assert got["cfg_scale"] == pytest.approx(0.8) and got["seed"] == 7
    assert got["image_shape"] == [512, 512, 3]
    assert got["static_mask_pixels"] == 512 * 112
    assert [d["mask_pixels"] for d in got["dynamic"]] == [100 * 100, 50 * 100]
    assert got["dynamic"][0]["trajectory"] == [[150, 350], [300, 360], [400, 300]]
    assert got["dynamic"][1]["trajectory"] == [[325, 162], [100, 50]]
    assert read_frames(out).shape[0] == 300


def test_tail_image_and_url_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An http URL is passed through to the fetcher; a local tail image becomes a data URI."""
    import http.server
    import threading

    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("KINEMA_CLI_RECORD", str(record))
    monkeypatch.setenv("KINEMA_FETCH_ALLOW", "127.0.0.1")
    served = tmp_path / "www"
    served.mkdir()
    write_photo(served / "wide.png", (640, 360))
    tail = write_photo(tmp_path / "tail.png", (640, 360))

    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/wide.png"
        rc = main(
            [
                "generate",
                url,
                "--prompt",
                "from a url",
                "--tail-image",
                str(tail),
                "--out",
                str(tmp_path / "o.mp4"),
                "-q",
            ]
        )
    finally:
        httpd.shutdown()
    assert rc == 0, capsys.readouterr().err
    import json

    got = json.loads((record / "from_a_url.json").read_text())
    assert got["image_shape"] == [360, 640, 3] and got["tail_image_shape"] == [360, 640, 3]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--cfg-scale", "1.5"], "--cfg-scale: body.cfg_scale: Input should be less than or equal to 1"),
        (
            ["--dynamic-mask", "{mask}", "--trajectory", "10,10"],
            "--trajectory #1: body.dynamic_masks.0.trajectories: a trajectory needs 2 to 77 points, got 1",
        ),
        (["--dynamic-mask", "{mask}"], "--dynamic-mask given 1 time(s) but --trajectory 0"),
        (["--dynamic-mask", "{mask}", "--trajectory", "10,10 20,x"], '--trajectory #1: "20,x" is not an x,y pair'),
        (
            ["--tail-image", "{image}", "--static-mask", "{mask}"],
            "--tail-image: body.tail_image_url: tail_image_url cannot be combined with static_mask_url",
        ),
        (["--static-mask", "{missing}"], "--static-mask: body.static_mask_url: no such file: "),
    ],
)
def test_invalid_flags_give_one_named_line(
    tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    mask = write_mask(tmp_path / "mask.png", (0, 0, 100, 100))
    names = {"mask": str(mask), "image": str(image), "missing": str(tmp_path / "missing.png")}
    out = tmp_path / "out.mp4"
    rc = main(["generate", str(image), "--prompt", "p", "--out", str(out), *[a.format(**names) for a in extra]])
    assert rc == 2
    assert one_error_line(capsys.readouterr().err).startswith(expected)
    assert not out.exists()


def test_errors_from_the_files_name_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = write_photo(tmp_path / "small.png", (200, 200))
    rc = main(["generate", str(small), "--prompt", "p", "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    msg = one_error_line(capsys.readouterr().err)
    assert msg.startswith("IMAGE: body.image_url: ") and "300" in msg


def test_user_errors_in_a_subprocess_have_no_traceback(tmp_path: Path, image: Path) -> None:
    proc = run_cli("generate", str(tmp_path / "nope.jpg"), "--prompt", "p", "--out", str(tmp_path / "o.mp4"))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == f"IMAGE: body.image_url: no such file: {tmp_path / 'nope.jpg'}"
    proc = run_cli("generate", str(image), "--prompt", "p", "--out", str(tmp_path / "no-dir" / "o.mp4"))
    assert proc.returncode == 2
    assert "--out: directory does not exist" in one_error_line(proc.stderr)


def test_engine_failure_is_one_line_and_leaves_no_file(
    tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.mp4"
    rc = main(["generate", str(image), "--prompt", "p", "--out", str(out), "--engine", FAILING, "-q"])
    assert rc == 2
    assert (
        one_error_line(capsys.readouterr().err) == "the engine failed: RuntimeError: fixture engine failure at frame 5"
    )
    assert list(tmp_path.iterdir()) == [image]


# -- through a server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("srv"), engine="tests/engines/cli_fixture.py:render") as s:
        yield s


def test_generate_through_server(tmp_path: Path, image: Path, server) -> None:
    out = tmp_path / "remote.mp4"
    proc = run_cli(
        "generate",
        str(image),
        "--prompt",
        "remote",
        "--out",
        str(out),
        "--duration",
        "10",
        "--server",
        server.url,
        "--key",
        server.key,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out).shape == (300, *FRAME_SIZE, 3)
    line = proc.stdout.strip()
    assert line.startswith(str(out)) and "10.00 s" in line and "request " in line
    rid = line.rsplit("request ", 1)[1].split()[0]
    st = httpx.get(f"{server.url}/fal-ai/kling-video/requests/{rid}/status", headers=server.headers).json()
    assert st["status"] == "COMPLETED"
    assert "downloading" in proc.stderr


def test_generate_through_server_with_env_and_upload(tmp_path: Path, image: Path, server) -> None:
    out = tmp_path / "up.mp4"
    env = cli_env(KINEMA_SERVER=server.url, FAL_KEY=server.key)
    proc = run_cli("generate", str(image), "--prompt", "uploaded", "--out", str(out), "--upload", env=env)
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out).shape == (150, *FRAME_SIZE, 3)
    listed = httpx.get(f"{server.url}/requests", headers=server.headers).json()["requests"]
    mine = [r for r in listed if r["input"]["prompt"] == "uploaded"]
    assert len(mine) == 1 and mine[0]["input"]["image_url"].startswith(server.url + "/files/")


def test_generate_server_errors(tmp_path: Path, image: Path, server) -> None:
    out = tmp_path / "x.mp4"
    base = ["generate", str(image), "--prompt", "p", "--out", str(out), "-q"]
    proc = run_cli(*base, "--server", server.url, "--key", "nope:nope")
    assert proc.returncode == 2 and "refused the key (401)" in one_error_line(proc.stderr)
    proc = run_cli(*base, "--server", f"http://127.0.0.1:{free_port()}", "--key", server.key)
    assert proc.returncode == 2 and "cannot reach the server" in one_error_line(proc.stderr)
    proc = run_cli(*base, "--server", server.url)
    assert proc.returncode == 2 and "no API key" in one_error_line(proc.stderr)
    # A 422 only the server can find (it needs the image itself), named by flag.
    small = write_photo(tmp_path / "small.png", (200, 200))
    proc = run_cli(
        "generate", str(small), "--prompt", "p", "--out", str(out), "--server", server.url, "--key", server.key
    )
    assert proc.returncode == 2
    assert " (422" in one_error_line(proc.stderr) and "IMAGE: body.image_url: " in proc.stderr
    assert not out.exists()


def test_ctrl_c_cancels_the_remote_request(tmp_path: Path, image: Path, server) -> None:
    proc = subprocess.Popen(
        [
            KINEMA,
            "generate",
            str(image),
            "--prompt",
            "slow cancel me",
            "--out",
            str(tmp_path / "c.mp4"),
            "--server",
            server.url,
            "--key",
            server.key,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=str(ROOT),
    )
    deadline = time.monotonic() + 60
    rid = None
    while time.monotonic() < deadline and rid is None:
        for r in httpx.get(f"{server.url}/requests", headers=server.headers).json()["requests"]:
            if r["input"]["prompt"] == "slow cancel me" and r["status"] == "IN_PROGRESS":
                rid = r["request_id"]
        time.sleep(0.1)
    assert rid is not None
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"cancelled request {rid}" in err and "rendering" in err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = httpx.get(f"{server.url}/fal-ai/kling-video/requests/{rid}/status", headers=server.headers).json()
        if st["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    assert st["status"] == "COMPLETED" and st.get("error")
    assert not (tmp_path / "c.mp4").exists()
