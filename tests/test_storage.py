"""kinema.media.storage on real files in a temporary folder."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from conftest import jpeg_bytes

from kinema.media.storage import FileStorage, StoredFile, sanitize_file_name, sniff_content_type


def _stream(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for c in chunks:
            await asyncio.sleep(0)
            yield c

    return gen()


def _folders(root: Path) -> list[Path]:
    return [p for p in root.iterdir()]


@pytest.fixture()
def storage(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "files")


def test_save_bytes_and_get(storage: FileStorage, photo_png: bytes) -> None:
    stored = storage.save_bytes(photo_png, file_name="astronaut.png", content_type="image/png")
    assert stored.file_name == "astronaut.png"
    assert stored.content_type == "image/png"
    assert stored.size == len(photo_png)
    assert stored.path.read_bytes() == photo_png
    assert stored.path.parent.parent == storage.root
    again = storage.get(stored.id, "astronaut.png")
    assert again == stored
    assert storage.get(stored.id) == stored


def test_ids_are_distinct(storage: FileStorage) -> None:
    ids = {storage.save_bytes(b"x").id for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 32 for i in ids)


def test_sniffed_type_beats_declared(storage: FileStorage, photo: object, photo_png: bytes) -> None:
    jpeg = jpeg_bytes(photo)  # type: ignore[arg-type]
    stored = storage.save_bytes(jpeg, file_name="pic", content_type="image/png")
    assert stored.content_type == "image/jpeg"
    assert stored.file_name == "pic.jpg"
    # A declared type is kept only for bytes that cannot be sniffed.
    text = storage.save_bytes(b"plain words", content_type="text/plain; charset=utf-8")
    assert text.content_type == "text/plain"
    unknown = storage.save_bytes(b"\x00\x01\x02")
    assert unknown.content_type == "application/octet-stream"


def test_nameless_png_gets_an_extension(storage: FileStorage, photo_png: bytes) -> None:
    stored = storage.save_bytes(photo_png)
    assert stored.file_name.endswith(".png")
    assert storage.get(stored.id, stored.file_name) is not None


@pytest.mark.parametrize(
    ("name", "ctype", "expected"),
    [
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("..\\..\\windows\\win.ini", "text/plain", "win.ini"),
        ("/abs/path/photo.jpg", "image/jpeg", "photo.jpg"),
        ("my holiday (1).png", "image/png", "my_holiday_1_.png"),
        ("", "image/png", "file.png"),
        (None, "video/mp4", "file.mp4"),
        ("...", "image/jpeg", "file.jpg"),
        (".hidden", "image/png", "hidden.png"),
    ],
)
def test_sanitize_file_name(name: str | None, ctype: str, expected: str) -> None:
    assert sanitize_file_name(name, ctype) == expected


def test_traversal_name_stays_inside_its_folder(storage: FileStorage, tmp_path: Path, photo_png: bytes) -> None:
    stored = storage.save_bytes(photo_png, file_name="../../../evil.png")
    assert stored.file_name == "evil.png"
    assert stored.path.resolve().parent == (storage.root / stored.id).resolve()
    assert not (tmp_path / "evil.png").exists()


def test_bookkeeping_names_are_never_given_to_a_file(storage: FileStorage) -> None:
    for name in ("meta.json", "meta.json.tmp"):
        stored = storage.save_bytes(b'{"a": 1}', file_name=name, content_type="application/json")
        assert stored.file_name == "file_" + name
        got = storage.get(stored.id, stored.file_name)
        assert got is not None and got.path.read_bytes() == b'{"a": 1}'


def test_sniff_content_type() -> None:
    assert sniff_content_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_content_type(b"GIF89a....") == "image/gif"
    assert sniff_content_type(b"\x00\x00\x00\x20ftypisom") == "video/mp4"
    assert sniff_content_type(b"<html>") is None


def test_asave_stream(storage: FileStorage, photo_png: bytes) -> None:
    chunks = [photo_png[i : i + 1000] for i in range(0, len(photo_png), 1000)]
    stored = asyncio.run(storage.asave_stream(_stream([b"", *chunks]), max_bytes=len(photo_png), file_name="up"))
    assert stored.content_type == "image/png"  # sniffed from the first chunks, though none was declared
    assert stored.file_name == "up.png"
    assert stored.size == len(photo_png)
    assert storage.get(stored.id, "up.png").path.read_bytes() == photo_png  # type: ignore[union-attr]


def test_asave_stream_with_tiny_first_chunks_still_sniffs(storage: FileStorage, photo_png: bytes) -> None:
    chunks = [photo_png[:3], photo_png[3:5], photo_png[5:]]
    stored = asyncio.run(storage.asave_stream(_stream(chunks), max_bytes=10**8))
    assert stored.content_type == "image/png"


def test_asave_stream_over_cap_keeps_nothing(storage: FileStorage) -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(10_000):
            pulled.append(i)
            yield b"z" * 1000

    with pytest.raises(ValueError, match="larger than 5000"):
        asyncio.run(storage.asave_stream(endless(), max_bytes=5000, file_name="big.bin"))
    assert len(pulled) == 6  # stopped at the first chunk past the cap
    assert _folders(storage.root) == []


def test_adopt_moves_the_file(storage: FileStorage, tmp_path: Path) -> None:
    src = tmp_path / "work" / "out.mp4"
    src.parent.mkdir()
    payload = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500
    src.write_bytes(payload)
    stored = storage.adopt(src, file_name="kinema-1234.mp4", content_type="video/mp4")
    assert not src.exists()
    assert stored.content_type == "video/mp4" and stored.size == len(payload)
    assert storage.get(stored.id, "kinema-1234.mp4").path.read_bytes() == payload  # type: ignore[union-attr]


def test_adopt_missing_source_leaves_nothing(storage: FileStorage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.adopt(tmp_path / "nope.mp4", file_name="x.mp4", content_type="video/mp4")
    assert _folders(storage.root) == []


def test_get_refuses_wrong_name_and_bad_ids(storage: FileStorage) -> None:
    stored = storage.save_bytes(b"hello", file_name="a.txt", content_type="text/plain")
    assert storage.get(stored.id, "b.txt") is None
    assert storage.get(stored.id, "meta.json") is None
    assert storage.get("0" * 32) is None
    assert storage.get(stored.id.upper()) is None
    assert storage.get(stored.id + "\n") is None
    assert storage.get("../" + stored.id) is None
    assert storage.get("not-an-id") is None


def test_get_ignores_half_written_folder(storage: FileStorage) -> None:
    folder = storage.root / ("ab" * 16)
    folder.mkdir()
    (folder / ".upload.tmp").write_bytes(b"partial")
    assert storage.get("ab" * 16) is None


def test_url_path_round_trip(storage: FileStorage) -> None:
    stored = storage.save_bytes(b"hello", file_name="a.txt")
    path = storage.url_path(stored)
    assert path == f"/files/{stored.id}/a.txt"
    assert storage.parse_url_path(path) == (stored.id, "a.txt")


@pytest.mark.parametrize(
    "path",
    [
        "/files/abc/a.txt",
        "/files/" + "a" * 32,
        "/files/" + "a" * 32 + "/",
        "/files/" + "a" * 32 + "/..",
        "/files/" + "a" * 32 + "/x/y",
        "/other/" + "a" * 32 + "/a.txt",
        "files/" + "a" * 32 + "/a.txt",
        "/files/" + "a" * 32 + "\n/a.txt",
    ],
)
def test_parse_url_path_refuses(path: str) -> None:
    assert FileStorage.parse_url_path(path) is None


def test_delete(storage: FileStorage) -> None:
    stored = storage.save_bytes(b"bye")
    assert storage.delete(stored.id) is True
    assert storage.get(stored.id) is None
    assert not (storage.root / stored.id).exists()
    assert storage.delete(stored.id) is False
    assert storage.delete("../..") is False


def test_purge_older_than(storage: FileStorage) -> None:
    old = storage.save_bytes(b"old")
    new = storage.save_bytes(b"new")
    meta_path = storage.root / old.id / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["created_at"] -= 3600
    meta_path.write_text(json.dumps(meta))
    # A leftover folder without metadata is judged by its modification time.
    orphan = storage.root / ("cd" * 16)
    orphan.mkdir()
    os.utime(orphan, (new.created_at - 7200, new.created_at - 7200))
    # Anything that is not one of the storage's folders is left alone.
    stray = storage.root / "README"
    stray.write_text("keep")

    assert storage.purge_older_than(1800) == 2
    assert storage.get(old.id) is None and not orphan.exists()
    assert isinstance(storage.get(new.id), StoredFile)
    assert stray.exists()
    assert storage.purge_older_than(1800, now=new.created_at + 3600) == 1
    assert storage.get(new.id) is None
