"""kinema: a self-hostable, fal-compatible Kling 1.0 image-to-video service."""

__all__ = ["__version__", "ENDPOINT_ID"]

__version__ = "0.1.0"

#: The fal endpoint id kinema serves, split by clients as owner/alias/path.
ENDPOINT_ID = "fal-ai/kling-video/v1/standard/image-to-video"
