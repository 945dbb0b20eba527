"""``kinema batch``: per-line results, failures that do not stop the batch, resumption, --server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import data_uri
from server import free_port, running_server
from test_cli_generate import ENGINE, FRAME_SIZE, SHORT_SIDE, cli_env, one_error_line, run_cli, write_photo

from kinema.cli.main import main
from kinema.media.encode import read_frames

#: The 640x360 photo at the fixture short side: (height, width).
WIDE_FRAME_SIZE = (90, 160)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KINEMA_SERVER", "KINEMA_KEY", "FAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KINEMA_ENGINE", ENGINE)
    monkeypatch.setenv("KINEMA_OUTPUT_SHORT_SIDE", SHORT_SIDE)


def write_jsonl(path: Path, lines: list[object | str]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def results(out_dir: Path) -> dict[int, dict]:
    recs = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    by_line = {r["line"]: r for r in recs}
    assert len(by_line) == len(recs)
    return by_line


@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    d = tmp_path / "jobs"
    (d / "img").mkdir(parents=True)
    write_photo(d / "img" / "a.png")
    write_photo(d / "img" / "wide.png", (640, 360))
    return d


def test_batch_in_process_with_failures_and_resume(
    tmp_path: Path, batch_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = write_jsonl(
        batch_dir / "jobs.jsonl",
        [
            {"prompt": "one", "image_url": "img/a.png"},
            "",
            {"prompt": "bad cfg", "image_url": "img/a.png", "cfg_scale": 2},
            {"prompt": "ten", "image_url": "img/wide.png", "duration": "10"},
            "{not json",
            {"prompt": "missing", "image_url": "img/none.png"},
        ],
    )
    out = tmp_path / "out"
    # Run from another directory: relative paths are relative to the JSONL file, not the cwd.
    rc = main(["batch", str(jsonl), "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out.strip().startswith("2 ok, 3 failed, 0 already done")
    assert "line 3: error: (422) body.cfg_scale: Input should be less than or equal to 1" in captured.err
    recs = results(out)
    assert sorted(recs) == [1, 3, 4, 5, 6]
    assert recs[1]["status"] == "ok" and recs[1]["output"] == "line-0001.mp4"
    assert recs[4]["status"] == "ok" and recs[4]["output"] == "line-0004.mp4"
    assert read_frames(out / "line-0001.mp4").shape == (150, *FRAME_SIZE, 3)
    assert read_frames(out / "line-0004.mp4").shape == (300, *WIDE_FRAME_SIZE, 3)
    assert recs[4]["frames"] == 300 and recs[4]["duration_s"] == pytest.approx(10.0)
    assert recs[3]["status"] == "error" and recs[3]["error"]["http_status"] == 422
    assert recs[3]["error"]["detail"][0]["loc"] == ["body", "cfg_scale"]
    assert recs[5]["error"]["detail"][0]["type"] == "json_invalid"
    assert recs[6]["error"]["detail"][0]["loc"] == ["body", "image_url"]
    assert "no such file" in recs[6]["error"]["detail"][0]["msg"]
    assert sorted(p.name for p in out.iterdir()) == ["line-0001.mp4", "line-0004.mp4", "results.jsonl"]

    # Resume: done lines are skipped (their videos untouched), failed ones run again.
    mtimes = {n: (out / f"line-000{n}.mp4").stat().st_mtime_ns for n in (1, 4)}
    rc = main(["batch", str(jsonl), "--out-dir", str(out), "-q"])
    assert rc == 1
    assert capsys.readouterr().out.startswith("0 ok, 3 failed, 2 already done")
    assert {n: (out / f"line-000{n}.mp4").stat().st_mtime_ns for n in (1, 4)} == mtimes

    # Change line 1 and fix line 3: exactly those run; line 4 stays done.
    lines = jsonl.read_text().splitlines()
    lines[0] = json.dumps({"prompt": "one, changed", "image_url": "img/a.png", "duration": "10"})
    lines[2] = json.dumps({"prompt": "fixed cfg", "image_url": "img/a.png", "cfg_scale": 1})
    jsonl.write_text("\n".join(lines) + "\n")
    rc = main(["batch", str(jsonl), "--out-dir", str(out), "-q"])
    assert rc == 1
    assert capsys.readouterr().out.startswith("2 ok, 2 failed, 1 already done")
    recs = results(out)
    assert recs[1]["status"] == "ok" and recs[3]["status"] == "ok"
    assert read_frames(out / "line-0001.mp4").shape[0] == 300
    assert read_frames(out / "line-0003.mp4").shape[0] == 150
    assert (out / "line-0004.mp4").stat().st_mtime_ns == mtimes[4]

    # A deleted video is redone even though its record says ok.
    (out / "line-0004.mp4").unlink()
    rc = main(["batch", str(jsonl), "--out-dir", str(out), "-q"])
    assert capsys.readouterr().out.startswith("1 ok, 2 failed, 2 already done")
    assert read_frames(out / "line-0004.mp4").shape[0] == 300


def test_batch_subprocess_user_errors(tmp_path: Path, batch_dir: Path) -> None:
    proc = run_cli("batch", str(tmp_path / "nope.jsonl"), "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no such file" in one_error_line(proc.stderr)
    empty = write_jsonl(batch_dir / "empty.jsonl", ["", "  "])
    proc = run_cli("batch", str(empty), "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no requests" in one_error_line(proc.stderr)
    ok = write_jsonl(batch_dir / "ok.jsonl", [{"prompt": "p", "image_url": "img/a.png"}])
    proc = run_cli("batch", str(ok), "--out-dir", str(tmp_path / "o"), "--engine", "nope.nothing:render")
    assert proc.returncode == 2 and "cannot load engine" in one_error_line(proc.stderr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("srv"), engine="tests/engines/cli_fixture.py:render", workers=2) as s:
        yield s


def test_batch_through_server(tmp_path: Path, batch_dir: Path, server) -> None:
    small = data_uri(write_photo(tmp_path / "small.png", (200, 200)).read_bytes())
    jsonl = write_jsonl(
        batch_dir / "remote.jsonl",
        [
            {"prompt": "r1", "image_url": "img/a.png"},
            {"prompt": "r2 too small", "image_url": small},
            {"prompt": "r3", "image_url": "img/wide.png", "duration": "10"},
            {"prompt": "r4", "image_url": "img/a.png", "cfg_scale": -1},
        ],
    )
    out = tmp_path / "out"
    proc = run_cli(
        "batch",
        str(jsonl),
        "--out-dir",
        str(out),
        "--server",
        server.url,
        "--key",
        server.key,
        "--upload",
        "--concurrency",
        "2",
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("2 ok, 2 failed, 0 already done")
    recs = results(out)
    assert recs[1]["status"] == "ok" and recs[3]["status"] == "ok"
    assert recs[1]["request_id"] and recs[1]["video_url"].startswith(server.url + "/files/")
    assert read_frames(out / "line-0001.mp4").shape == (150, *FRAME_SIZE, 3)
    assert read_frames(out / "line-0003.mp4").shape == (300, *WIDE_FRAME_SIZE, 3)
    # Line 2 failed on the server (the image is too small), line 4 before anything was sent.
    assert recs[2]["error"]["http_status"] == 422 and recs[2]["error"]["request_id"]
    assert recs[2]["error"]["detail"][0]["loc"] == ["body", "image_url"]
    assert recs[4]["error"]["detail"][0]["loc"] == ["body", "cfg_scale"]

    # Resume through the server: nothing done is submitted again.
    def count() -> int:
        return len(httpx.get(f"{server.url}/requests", headers=server.headers).json()["requests"])

    before = count()
    proc = run_cli("batch", str(jsonl), "--out-dir", str(out), "--server", server.url, "--key", server.key)
    assert proc.stdout.startswith("0 ok, 2 failed, 2 already done")
    assert count() == before + 1  # only line 2 went to the server again (line 4 fails locally)


def test_batch_server_unreachable_stops(tmp_path: Path, batch_dir: Path) -> None:
    jsonl = write_jsonl(batch_dir / "r.jsonl", [{"prompt": "p", "image_url": "img/a.png"}] * 3)
    env = cli_env(KINEMA_SERVER=f"http://127.0.0.1:{free_port()}", KINEMA_KEY="k")
    proc = run_cli("batch", str(jsonl), "--out-dir", str(tmp_path / "o"), env=env)
    assert proc.returncode == 2 and "cannot reach the server" in one_error_line(proc.stderr)
    assert (tmp_path / "o" / "results.jsonl").read_text() == ""
