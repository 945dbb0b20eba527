"""The webhook signing key (Ed25519), its JWKS, and the fal webhook signature headers.

The signed message is ``request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + sha256_hex(body)``
(UTF-8); the signature header carries the hex of the 64-byte Ed25519 signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["jwks", "load_or_create_key", "public_jwk", "signature_headers", "signed_message"]

log = logging.getLogger("kinema.webhooks")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Load the PEM private key at ``path``; create it (mode 0600) when absent.

    Creation writes a private temporary file and hard-links it into place, so concurrent
    first uses agree on one key and no reader sees a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first; use theirs
        finally:
            tmp.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("webhook key %s is readable by others (mode %o); chmod 600 it", path, mode)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK; ``kid`` is its RFC 7638 thumbprint."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = _b64url(raw)
    thumb = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = _b64url(hashlib.sha256(thumb.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


def jwks(public_key: Ed25519PublicKey) -> dict[str, list[dict[str, str]]]:
    return {"keys": [public_jwk(public_key)]}


def signed_message(request_id: str, user_id: str, timestamp: int, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, str(timestamp), hashlib.sha256(body).hexdigest()]).encode("utf-8")


def signature_headers(
    key: Ed25519PrivateKey, request_id: str, user_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The four ``X-Fal-Webhook-*`` headers for one delivery attempt made at ``timestamp`` (unix s)."""
    if "\n" in request_id or "\n" in user_id:
        raise ValueError("request_id and user_id must not contain newlines")
    signature = key.sign(signed_message(request_id, user_id, timestamp, body))
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": signature.hex(),
    }
