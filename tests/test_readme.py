"""The README's commands, run as written: the opening (clone, then install + first key + serve, twice: still one
key) and the curl walkthrough (upload → submit → poll → result → download) against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from server import ROOT, running_server

from kinema.media.encode import read_frames

README = (ROOT / "README.md").read_text()


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_readme_opens_with_clone_then_the_two_commands() -> None:
    blocks = bash_blocks(README[: README.index("\n## ")])
    assert [b.strip().split()[0] for b in blocks] == ["git", "python3", "bash"]
    assert blocks[0].strip().endswith("&& cd kinema")
    assert blocks[2].strip() == "bash scripts/test.sh"
    assert "/kinema-data/" in (ROOT / ".gitignore").read_text().splitlines()


def test_first_command_twice_makes_one_key(tmp_path: Path) -> None:
    """The first command's steps after the install, run twice in a fresh directory (``.venv/bin/kinema`` is this
    checkout's; the final ``kinema serve`` is left out, other tests cover it): the second run keeps the first key
    and names it."""
    command = bash_blocks(README)[1].strip()
    steps = [s.strip() for s in command.split("&&")]
    assert steps[:2] == ["python3 -m venv .venv", ".venv/bin/pip install -e ."]
    assert steps[-1].startswith(".venv/bin/kinema serve ")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "kinema").symlink_to(Path(sys.executable).parent / "kinema")
    rest = " && ".join(steps[2:-1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINEMA_")}
    outputs = [
        subprocess.run(
            ["bash", "-euc", rest], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
        for _ in range(2)
    ]
    key_id = outputs[0].strip().splitlines()[-1].split(":")[0]
    assert re.fullmatch(r"[0-9a-f]{16}", key_id), outputs[0]
    assert key_id in outputs[1] and "No key created" in outputs[1]
    listed = subprocess.run(
        [str(tmp_path / ".venv/bin/kinema"), "keys", "list", "--data-dir", "kinema-data"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split("\t")[0] for line in listed.splitlines()] == [key_id]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough needs curl")
def test_curl_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = bash_blocks(section("First video with curl"))
    assert len(blocks) == 1
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "photo.jpg", quality=90)
    with running_server(tmp_path, data_dir=tmp_path / "kinema-data") as server:
        env = {**os.environ, "KINEMA": server.url, "FAL_KEY": server.key}
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", blocks[0]],
            cwd=tmp_path,
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("saved video.mp4 from " + server.url + "/files/")
    frames = read_frames(tmp_path / "video.mp4")
    assert frames.shape[0] == 150  # 5 s at 30 fps, the default duration
