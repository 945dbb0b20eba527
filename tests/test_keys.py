"""The key store on its own: hashes only, verification, revocation seen by every open instance."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kinema.keys import KeyStore, parse_authorization


def test_keys_are_stored_hashed_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    keys = KeyStore(path)
    try:
        whole = keys.create()
        key_id, secret = whole.split(":")
        assert keys.verify(f"Key {whole}") == key_id
        assert keys.verify(f"key   {whole}") == key_id  # scheme is case-insensitive, spaces tolerated
        assert keys.verify(f"Key {key_id}:{secret}x") is None
        assert keys.verify(f"Key nosuchid:{secret}") is None
        assert keys.verify(f"Bearer {whole}") is None and keys.verify(None) is None
        assert [k.id for k in keys.list()] == [key_id]
    finally:
        keys.close()
    stored = sqlite3.connect(path).execute("SELECT secret_hash FROM api_keys").fetchone()[0]
    assert secret not in stored and len(stored) == 64


def test_revocation_in_another_instance_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    server_side, cli_side = KeyStore(path), KeyStore(path)
    try:
        whole = server_side.create()
        key_id = whole.split(":")[0]
        assert server_side.verify(f"Key {whole}") == key_id  # now cached
        assert cli_side.revoke(key_id) is True
        assert server_side.verify(f"Key {whole}") is None  # the cache follows the database
        assert server_side.list() == []
    finally:
        server_side.close()
        cli_side.close()


def test_parse_authorization() -> None:
    assert parse_authorization("Key abc:def") == ("abc", "def")
    assert parse_authorization("Key abc:d:e") == ("abc", "d:e")
    for bad in ("", "Key", "Key abc", "Key :x", "Key x:", "Basic abc:def"):
        assert parse_authorization(bad) is None, bad
