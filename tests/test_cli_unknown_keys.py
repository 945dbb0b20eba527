"""Unknown keys: ignored like fal does, but the CLI says so and names the key that was probably meant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server import running_server
from test_cli_generate import run_cli, write_mask, write_photo

from kinema.media.encode import read_frames

TYPO = 'line 1: warning: durration: unknown key, ignored (did you mean "duration"?)'
NESTED = 'line 2: warning: dynamic_masks[0].trajectory: unknown key, ignored (did you mean "trajectories"?)'


def _batch_file(tmp_path: Path) -> Path:
    write_photo(tmp_path / "a.png")
    write_mask(tmp_path / "m.png", (100, 100, 200, 200))
    lines = [
        {"prompt": "typo", "image_url": "a.png", "durration": "10"},
        {
            "prompt": "nested",
            "image_url": "a.png",
            "static_mask_url": "m.png",
            "dynamic_masks": [{"mask_url": "m.png", "trajectory": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}],
        },
        {"prompt": "clean", "image_url": "a.png", "duration": "10"},
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def _check(proc, out: Path) -> None:
    assert proc.returncode == 1, proc.stderr  # line 2 fails: its points are under a misspelt key
    warnings = [ln for ln in proc.stderr.splitlines() if "warning:" in ln]
    assert warnings == [TYPO, NESTED]
    records = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    assert records[1]["error"]["detail"][0]["loc"] == ["body", "dynamic_masks", 0, "trajectories"]
    # Ignored, as fal does: the misspelt duration gives the default 5 s; the spelt one gives 10 s.
    assert read_frames(out / "line-0001.mp4").shape[0] == 150
    assert read_frames(out / "line-0003.mp4").shape[0] == 300


def test_batch_in_process_warns_about_unknown_keys_even_when_quiet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _check(run_cli("batch", str(_batch_file(tmp_path)), "--out-dir", str(out), "-q"), out)


def test_batch_through_a_server_warns_and_the_server_ignores_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_server(tmp_path, engine="tests/engines/cli_fixture.py:render") as server:
        proc = run_cli(
            "batch",
            str(_batch_file(tmp_path)),
            "--out-dir",
            str(out),
            "-q",
            "--server",
            server.url,
            "--key",
            server.key,
        )
    _check(proc, out)


@pytest.mark.parametrize(("flag", "meant"), [("--durration", "--duration"), ("--negative_prompt", "--negative-prompt")])
def test_generate_names_the_flag_meant(tmp_path: Path, flag: str, meant: str) -> None:
    image = write_photo(tmp_path / "a.png")
    proc = run_cli("generate", str(image), "--prompt", "p", "--out", str(tmp_path / "o.mp4"), flag, "10")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("kinema: error: ")]
    assert errors == [f"kinema: error: unrecognized arguments: {flag} 10 ({flag}: did you mean {meant}?)"]
    assert not (tmp_path / "o.mp4").exists()
