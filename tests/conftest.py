"""Shared fixtures: real photographs (from scikit-image) as files and data URIs."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg import pg_cluster, pg_url, postgres_env  # noqa: E402,F401  (the PostgreSQL fixtures, for every test module)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """The astronaut photograph, 512×512 RGB."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def photo_uri(photo: np.ndarray) -> str:
    return data_uri(jpeg_bytes(photo), "image/jpeg")


@pytest.fixture(scope="session")
def photo_png(photo: np.ndarray) -> bytes:
    return png_bytes(photo)
