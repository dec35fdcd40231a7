"""What an upload may be: bytes and pixels, read by the same loaders and rules as a local file.

Every uploaded image goes through core/imageio.py's `load_image` / `load_mask` (the formats allowed, the
decompression-bomb check, damaged and truncated files, EXIF orientation), so a remote job accepts exactly
what a local one does. The service adds its own ceilings: the request's size (checked while it streams in,
before it is all read) and the pixel count (checked on the header, before any pixel is decoded).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import MAX_IMAGE_PIXELS, READ_FORMATS, load_image, load_mask
from inpaint_studio.engine.wire import is_mask_name

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD_MB = 256
DEFAULT_MAX_MEGAPIXELS = 100
MAX_IMAGES = 8  # named images in one request (image, mask, control image, ... with room for new ones)
MAX_REQUEST_JSON_MB = 16  # the job and a chain's latent hand-off


class UploadTooLarge(BadInputError):
    """The request is larger than the server accepts (HTTP 413)."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    max_pixels: int = DEFAULT_MAX_MEGAPIXELS * 1_000_000

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise BadInputError("Upload limits must be above zero.")
        if self.max_pixels > MAX_IMAGE_PIXELS:
            raise BadInputError(f"The pixel limit can be at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels.")

    def too_large(self) -> UploadTooLarge:
        return UploadTooLarge(
            f"The upload is larger than the {self.max_bytes / MB:.0f} MB this server accepts; send a smaller "
            "image, or ask its administrator to raise --max-upload-mb."
        )


async def limited(stream: AsyncIterator[bytes], limits: UploadLimits) -> AsyncIterator[bytes]:
    """The request body, stopped with UploadTooLarge as soon as it passes the byte limit."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limits.max_bytes:
            raise limits.too_large()
        yield chunk


def load_upload(name: str, data: bytes, limits: UploadLimits, *, mode: str | None = None) -> Image.Image:
    """Decode one uploaded image part with the local loaders; masks (names ending in "mask") as masks.

    `mode` is the mode the client had: an opaque "RGBA" image comes back as "RGBA" (the loaders drop an
    alpha that is 255 everywhere, and the engine keeps transparency only where the input had it).
    """
    if not data:
        raise BadInputError(f"The uploaded {name} is empty; send the image again.")
    with tempfile.TemporaryDirectory(prefix="inpaint-upload-") as folder:
        path = Path(folder) / f"{name}.upload"
        path.write_bytes(data)
        try:
            _check_pixels(path, name, limits)
            if is_mask_name(name):
                image = load_mask(path)
            else:
                image = load_image(path).image
        except BadInputError as exc:
            # The loaders name the file; here it is the request's part, not a path on the server.
            text = str(exc).replace(f"'{path}'", f"the uploaded {name}").replace(str(path), f"the uploaded {name}")
            raise BadInputError(text[:1].upper() + text[1:]) from exc
    if mode == "RGBA" and image.mode == "RGB":
        image = image.convert("RGBA")
    return image


def _check_pixels(path: Path, name: str, limits: UploadLimits) -> None:
    """Refuse an image above the server's pixel limit from its header alone."""
    try:
        Image.init()
        with Image.open(path, formats=[f for f in READ_FORMATS if f in Image.OPEN]) as im:
            width, height = im.size
    except Exception:  # not an image at all: the loader says so in its own words
        return
    if width * height > limits.max_pixels:
        raise BadInputError(
            f"The uploaded {name} has {width}x{height} = {width * height:,} pixels, more than the "
            f"{limits.max_pixels:,} this server accepts; scale it down or crop it first."
        )
