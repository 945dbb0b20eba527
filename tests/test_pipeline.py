"""The request pipeline: parse → fetch → decode → engine → contract → encode → Storage.put."""

from __future__ import annotations

from pathlib import Path

import pytest
from engines._frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn, Progress
from kinema.errors import Cancelled, EngineError, InputError
from kinema.media.encode import read_frames
from kinema.media.storage import FileStorage, OwnUrls, open_storage
from kinema.pipeline import Pipeline
from kinema.settings import Settings


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=8123, output_short_side=90).replace(**kw)


def run(pipe: Pipeline, storage: FileStorage, payload: dict, work: Path, **kw: object):  # type: ignore[no-untyped-def]
    progress: list[Progress] = []
    lines: list[str] = []
    out = pipe.run(
        payload,
        storage=storage,
        base_url="http://example.test",
        work_path=work,
        file_name="kinema-test.mp4",
        progress=progress.append,
        should_cancel=kw.get("should_cancel", lambda: False),
        log=lines.append,
    )  # type: ignore[arg-type]
    return out, progress, lines


def test_a_request_ends_in_storage_as_a_fal_file(tmp_path: Path, photo_uri: str) -> None:
    s = settings(tmp_path)
    storage = open_storage(s)
    work = tmp_path / "work" / "job.mp4"
    stored, progress, lines = run(
        Pipeline(s, FixtureEngine()), storage, {"prompt": "p", "image_url": photo_uri, "duration": "10"}, work
    )
    assert stored.file["url"].startswith("http://example.test/files/") and stored.file["url"].endswith(
        "/kinema-test.mp4"
    )
    assert stored.file["content_type"] == "video/mp4" and stored.file["file_name"] == "kinema-test.mp4"
    path = storage.root / stored.file["url"].split("/files/")[1]
    assert stored.file["file_size"] == path.stat().st_size
    assert read_frames(path).shape == (300, 90, 90, 3)
    assert not work.exists()  # handed over, not copied
    assert [p for p in progress if p.stage == "encode"][-1] == Progress(300, 300, "encode")
    assert any("input image 512x512" in line for line in lines)


def test_own_file_urls_are_read_from_storage_under_every_server_name(tmp_path: Path, photo_png: bytes) -> None:
    s = settings(tmp_path, host="127.0.0.1")
    storage = open_storage(s)
    f = storage.save_bytes(photo_png, file_name="a.png")
    pipe = Pipeline(s, FixtureEngine(), local=storage.read_own)
    for host in ("localhost", "127.0.0.1", "[::1]", "LOCALHOST."):
        inputs = pipe.prepare({"prompt": "p", "image_url": f"http://{host}:8123/files/{f.id}/a.png"}, log=print)
        assert inputs.image.shape == (512, 512, 3), host
    # Another port is another server: fetched like any URL, and loopback is refused.
    with pytest.raises(InputError) as err:
        pipe.prepare({"prompt": "p", "image_url": f"http://localhost:8124/files/{f.id}/a.png"}, log=print)
    assert err.value.errors[0]["loc"] == ["body", "image_url"]


def test_own_urls_follow_the_public_url_and_allowed_names() -> None:
    own = OwnUrls(port=8000, hosts=["0.0.0.0", "kinema.lan"], bases=["https://video.example.com/kinema"])
    fid = "a" * 32
    assert own.file_path(f"https://video.example.com/kinema/files/{fid}/x.png?sig=1") == f"/files/{fid}/x.png"
    assert own.file_path(f"http://kinema.lan:8000/files/{fid}/x.png") == f"/files/{fid}/x.png"
    assert own.file_path(f"http://kinema.lan:8001/files/{fid}/x.png") is None
    assert own.file_path(f"http://elsewhere:8000/files/{fid}/x.png") is None
    assert own.file_path("http://localhost:8000/other/path") is None
    assert own.file_path("http://0.0.0.0:8000/files/x/y") is None  # the wildcard bind address is no name


def test_invalid_input_is_a_422_naming_the_field(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with pytest.raises(InputError) as err:
        run(
            Pipeline(s, FixtureEngine()),
            open_storage(s),
            {"prompt": "p", "image_url": "data:image/png;base64,AAAA"},
            tmp_path / "w.mp4",
        )
    assert err.value.status_code == 422 and err.value.errors[0]["loc"] == ["body", "image_url"]


def _boom(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 3:
        raise RuntimeError("boom at 3")


def test_an_engine_exception_is_an_engine_error_and_leaves_no_file(tmp_path: Path, photo_uri: str) -> None:
    s = settings(tmp_path)
    storage = open_storage(s)
    work = tmp_path / "work" / "job.mp4"
    with pytest.raises(EngineError) as err:
        run(Pipeline(s, FixtureEngine(on_frame=_boom)), storage, {"prompt": "p", "image_url": photo_uri}, work)
    assert err.value.status_code == 500 and err.value.error_type == "engine_error"
    assert "RuntimeError: boom at 3" in str(err.value)
    assert not work.exists() and list(storage.root.iterdir()) == []


def test_cancel_stops_the_render_and_leaves_no_file(tmp_path: Path, photo_uri: str) -> None:
    s = settings(tmp_path)
    storage = open_storage(s)
    work = tmp_path / "work" / "job.mp4"
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 40

    with pytest.raises(Cancelled):
        run(
            Pipeline(s, FixtureEngine()),
            storage,
            {"prompt": "p", "image_url": photo_uri},
            work,
            should_cancel=should_cancel,
        )
    assert not work.exists() and list(storage.root.iterdir()) == []


def test_kinema_batch_loads_the_engine_once_for_the_whole_file(
    tmp_path: Path, photo_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from kinema.cli.main import main

    loads = tmp_path / "loads.txt"
    (tmp_path / "a.png").write_bytes(photo_png)
    jsonl = tmp_path / "jobs.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt": f"line {i}", "image_url": "a.png"}) + "\n" for i in range(4)))
    monkeypatch.setenv("KINEMA_ENGINE", f"{Path(__file__).parent / 'engines' / 'load_counting.py'}:load")
    monkeypatch.setenv("KINEMA_OUTPUT_SHORT_SIDE", "90")
    monkeypatch.setenv("KINEMA_TEST_LOADS", str(loads))
    for name in ("KINEMA_SERVER", "KINEMA_KEY", "FAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["batch", str(jsonl), "--out-dir", str(tmp_path / "out"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == [f"line-000{i}.mp4" for i in range(1, 5)]
    assert len(loads.read_text().splitlines()) == 1
