"""Reading and writing images and masks the way cameras, phones and editors actually write them.

Everything the rest of the app sees is normalised here, by the rules below (they are the documented
behaviour; the tests check each one).

Images (`load_image`) come back in mode "RGB", or "RGBA" when the file has real transparency:

* EXIF orientation is applied (all 8 orientations, `PIL.ImageOps.exif_transpose`), so pixels are upright;
  the returned EXIF block has its Orientation reset to 1 so no other program rotates them a second time.
* "CMYK": converted to sRGB through the embedded ICC profile with LittleCMS (relative colorimetric with
  black point compensation, as print workflows do); without a usable profile, Pillow's plain conversion.
  The CMYK profile is dropped either way (`icc_profile` None means sRGB).
* "I;16", "I;16L", "I;16B", "I;16N" (16-bit) and "I" with values in 0..65535: scaled, not clipped, to
  8 bits as round(v * 255 / 65535), so 65535 -> 255 and 32768 -> 128. "I" with values outside 0..65535:
  its own min..max is stretched to 0..255.
* "F" (32-bit float, e.g. float TIFF): when the largest finite value is at most 1 the data is taken as
  0..1 and scaled by 255, otherwise as 0..255; then rounded and clipped to 0..255 (NaN -> 0).
* "P" with a transparent colour -> "RGBA"; "P" without -> "RGB"; "PA" -> "RGBA".
* "LA" -> "RGBA"; "La"/"RGBa" (premultiplied) -> "RGBA"; "L" and "1" -> "RGB" (grey copied to R, G, B).
* "L" or "RGB" with a transparent colour (a PNG tRNS chunk) -> "RGBA", that colour fully transparent.
* Any other mode ("YCbCr", "LAB", "HSV", "RGBX", ...) -> "RGB" with Pillow's conversion.
* Alpha that is 255 everywhere is not transparency: such an image comes back as "RGB".
* The ICC profile is kept as it is when it describes RGB data and LittleCMS can read it. A grey profile on
  a grey image is applied (grey -> sRGB) and then dropped; a profile that does not match the pixels (e.g.
  an RGB profile on a grey image, a LAB profile on RGB) or a broken or cut-off one is dropped, because
  attaching it would mis-colour the image.
* Animated GIF/WebP/PNG, multi-page TIFF and MPO (multi-picture JPEG from phones and cameras): the first
  frame/page, which is the main picture.
* A 1x1 image is an image.
* The returned image's `info` is empty: the metadata lives in the `LoadedImage` fields only.

Metadata: `exif` is the raw EXIF block of JPEG, PNG and WebP files (TIFF keeps its metadata in TIFF tags,
which are not carried; an EXIF block whose orientation cannot be reset is dropped). `parameters` is the
PNG "parameters" text chunk, or else A1111-style text in the EXIF UserComment, the JPEG comment or the TIFF
ImageDescription (those free-text fields are only taken when they end in a settings line with "Steps:",
because cameras write other text there). A text longer than MAX_PARAMETERS_CHARS is ignored.

Masks (`load_mask`) come back in mode "L", 255 = repaint, 0 = keep, soft values kept as they are (the
engine binarises or feathers):

* "L" (without a transparent colour) as is; "1" -> 0/255; "P" without transparency -> its luminance;
  16-bit and "I" -> scaled to 8 bits, and "F", as for images.
* "LA", "RGBA", "PA", "La", "RGBa", and "P", "L" or "RGB" with a transparent colour -> the alpha channel,
  unless the alpha is 255 everywhere (an opaque layer carries its mask in the grey levels): then the
  luminance.
* "RGB" (without a transparent colour) and any other mode -> luminance (ITU-R 601-2, Pillow's "L" conversion).
* EXIF orientation is applied; ICC profiles are ignored (a mask is data, not colour).

Decompression bombs: Pillow's own limit (`Image.MAX_IMAGE_PIXELS`, process-wide) is set to our
`MAX_IMAGE_PIXELS` when this module is imported, its warning is turned into an error while we open a file,
and we check the header's size ourselves before decoding (in case someone switched Pillow's check off).
Either way the user gets a BadInputError naming the file and its pixel count, before any pixel memory is
allocated. (`warnings.catch_warnings` is process-wide state before Python 3.14: a load running at the same
moment in another thread may briefly share that filter, which only makes its bomb check stricter.)

Damaged files: the whole image is decoded inside the open call, so a truncated file fails there, unless
some other code has set Pillow's `ImageFile.LOAD_TRUNCATED_IMAGES` (we never do). A TIFF whose strips or
tiles cover less than its declared size is refused before decoding (Pillow would fill the rest with zeros).

Only these Pillow formats are opened (no EPS, which would run Ghostscript): see `READ_FORMATS`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.parameters import looks_like_parameters

MAX_IMAGE_PIXELS: Final = 250_000_000
"""Largest image (width x height) we open; larger files are refused before any pixel is decoded."""

MAX_PARAMETERS_CHARS: Final = 65_536
"""Longest generation-settings text read from a file (longer text is not settings and is ignored)."""

# Pillow warns above its limit and refuses above twice it; we turn the warning into an error while
# opening, so Pillow refuses everything above our limit without decoding.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

READ_FORMATS: Final = (
    "PNG",
    "JPEG",
    "MPO",
    "WEBP",
    "TIFF",
    "BMP",
    "DIB",
    "GIF",
    "TGA",
    "PPM",
    "JPEG2000",
    "QOI",
    "AVIF",
    "PSD",
    "ICO",
)
"""Pillow formats `load_image`/`load_mask` open (those this Pillow build supports)."""

SAVE_FORMATS: Final = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
"""File extension (lower case) -> format `save_image` writes."""

_SUPPORTED_EXTENSIONS = ", ".join(SAVE_FORMATS)
_MAX_SIDE = {"JPEG": 65_535, "WEBP": 16_383}  # hard limits of the file formats
_MAX_JPEG_SEGMENT = 65_533  # bytes of payload in one JPEG APP1/COM segment

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_IMAGE_DESCRIPTION = 0x010E
_CHUNK_ELEMENTS = 1 << 22  # numpy work is done in row blocks of about this many values, to bound memory

_INT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"LA", "La", "RGBA", "RGBa", "PA"})


@dataclass(frozen=True)
class LoadedImage:
    """An image as `load_image` returns it: upright, "RGB" or "RGBA", with the metadata worth keeping."""

    image: Image.Image
    """Mode "RGB", or "RGBA" when the file has real transparency; EXIF orientation applied."""
    path: Path | None
    format: str | None
    """Pillow's format name of the file ("JPEG", "PNG", "MPO", "WEBP", "TIFF", ...)."""
    original_mode: str
    """The mode the file decoded to before the conversion rules ("CMYK", "I;16", "P", ...)."""
    icc_profile: bytes | None
    """The file's RGB ICC profile; None means sRGB (also after a CMYK or grey -> sRGB conversion)."""
    exif: bytes | None
    """The raw EXIF block, with Orientation set to 1; None when the file has none."""
    parameters: str | None
    """A1111-style generation settings stored in the file, if any."""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


# ---- loading ---------------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Open an image file, apply its EXIF orientation and convert it by the rules in the module docstring.

    Raises BadInputError (one sentence naming the file and saying what to do) for a missing file, a
    folder, an empty file, a file that is not a readable image, a damaged or truncated file, an image
    above MAX_IMAGE_PIXELS, or one too large for the memory available. The file is closed on return.
    """
    p = Path(path)
    decoded = _decode(p, kind="image")
    image, icc = _to_rgb(decoded.image, decoded.icc_profile)
    image.info = {}  # the metadata lives in the fields below, so nothing stale rides along on the pixels
    return LoadedImage(
        image=image,
        path=p,
        format=decoded.format,
        original_mode=decoded.original_mode,
        icc_profile=icc,
        exif=decoded.exif,
        parameters=decoded.parameters,
    )


def load_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> Image.Image:
    """Open a mask file as mode "L" (255 = repaint, 0 = keep) by the rules in the module docstring.

    When `size` (width, height) is given and the upright mask differs, raises BadInputError naming both
    sizes. Other errors as for `load_image`.
    """
    p = Path(path)
    mask = _to_mask(_decode(p, kind="mask").image)
    mask.info = {}
    if size is not None and tuple(mask.size) != tuple(size):
        raise BadInputError(
            f"The mask '{p}' is {mask.width}x{mask.height} but the image is {size[0]}x{size[1]}; "
            "use a mask of the same size as the image."
        )
    return mask


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image  # upright, detached from the file, in the file's own mode
    format: str | None
    original_mode: str
    icc_profile: bytes | None
    exif: bytes | None
    parameters: str | None


def _decode(p: Path, *, kind: str) -> _Decoded:
    """Open, size-check, fully decode and orient `p`; every failure becomes one BadInputError."""
    _check_is_readable_file(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow's notes about slightly broken metadata are not something the user can act on.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            # Our own handle, so it is closed even when Pillow raises half-way through opening.
            with open(p, "rb") as fh, Image.open(fh, formats=_read_formats()) as im:
                _check_pixel_count(p, im.width * im.height, im.size)
                _check_data_covers_image(p, im)
                im.load()  # decode everything now, inside the try: a truncated file fails here
                upright = ImageOps.exif_transpose(im)  # always a new image, detached from the file
                return _Decoded(
                    image=upright,
                    format=im.format,
                    original_mode=im.mode,
                    icc_profile=im.info.get("icc_profile") or None,
                    exif=_upright_exif(im.info.get("exif")),
                    parameters=_read_parameters(im),
                )
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise BadInputError(_too_many_pixels_message(p, int(match.group(1)) if match else None, None)) from exc
    except FileNotFoundError as exc:  # removed between the check and the open
        raise BadInputError(_missing_message(p)) from exc
    except PermissionError as exc:
        raise BadInputError(
            f"Cannot read '{p}' because permission was denied; "
            "check the file's permissions or copy it to a folder you own."
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadInputError(_unidentified_message(p, kind)) from exc
    except MemoryError as exc:
        raise BadInputError(
            f"'{p}' is too large for the memory available; close other programs or scale it down first."
        ) from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, struct.error, ... on bad data
        raise BadInputError(_damaged_message(p, exc)) from exc


def _check_is_readable_file(p: Path) -> None:
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise BadInputError(_missing_message(p)) from exc
    except OSError as exc:
        raise BadInputError(
            f"Cannot open '{p}' ({exc.strerror or exc}); check the path and that the drive is connected."
        ) from exc
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"'{p}' is a folder, not an image file; pick an image file inside it.")
    if st.st_size == 0:
        raise BadInputError(
            f"'{p}' is empty (0 bytes), probably from an interrupted copy or save; copy or export the image again."
        )


def _check_pixel_count(p: Path, pixels: int, size: tuple[int, int]) -> None:
    if pixels > MAX_IMAGE_PIXELS:
        raise BadInputError(_too_many_pixels_message(p, pixels, size))


def _check_data_covers_image(p: Path, im: Image.Image) -> None:
    """A TIFF whose strips or tiles cover only part of its declared size is damaged.

    Pillow would allocate the whole image and leave the rest zero: a few hundred bytes claiming 16x9,699,332
    float pixels took 12 s and 1.9 GB to "open" (found by fuzzing). TIFF tiles never overlap, so their areas
    add up to at least the image's when every row is there.
    """
    if im.format != "TIFF" or not im.tile:
        return
    covered = sum(max(0, x1 - x0) * max(0, y1 - y0) for _name, (x0, y0, x1, y1), *_rest in im.tile)
    if covered < im.width * im.height:
        raise BadInputError(
            f"'{p}' is damaged or incomplete (its pixel data covers {covered:,} of {im.width * im.height:,} "
            "pixels); open the original again or re-export it from the program that made it."
        )


def _too_many_pixels_message(p: Path, pixels: int | None, size: tuple[int, int] | None) -> str:
    if pixels is None:
        count = "more pixels than"
    else:
        dims = f"{size[0]}x{size[1]} = " if size else ""
        count = f"{dims}{pixels:,} pixels, more than"
    return (
        f"'{p}' has {count} the {MAX_IMAGE_PIXELS:,} this app can open; "
        "scale it down in another editor and open it again."
    )


def _missing_message(p: Path) -> str:
    return f"Cannot open '{p}' because the file does not exist; check the name and folder, or pick it again."


def _unidentified_message(p: Path, kind: str) -> str:
    with contextlib.suppress(OSError), open(p, "rb") as fh:
        head = fh.read(32)
        if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"heim"}:
            return (
                f"'{p}' is a HEIC/HEIF photo, which this app cannot read; "
                "export it as JPEG or PNG (phones and photo apps can) and open that."
            )
        if _looks_like_known_image(head):
            # The signature is right but Pillow could not even read the header: a cut-off file.
            return _damaged_message(p, None)
    return (
        f"'{p}' is not {'a mask' if kind == 'mask' else 'an image'} file this app can read; "
        "use a PNG, JPEG, TIFF or WebP file, or export it in one of those formats."
    )


def _looks_like_known_image(head: bytes) -> bool:
    return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF8", b"BM")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    )


def _damaged_message(p: Path, exc: BaseException | None) -> str:
    reason = ""
    if exc is not None:
        # Only the first sentence of the decoder's message, so ours stays one sentence.
        text = str(exc).strip().split(". ")[0].rstrip(".").strip()
        if text:
            reason = f" ({text[:120]})"
    return (
        f"'{p}' is damaged or incomplete{reason}; "
        "open the original again or re-export it from the program that made it."
    )


def _read_formats() -> list[str]:
    Image.init()  # registers every plugin, so the list below reflects this Pillow build
    return [name for name in READ_FORMATS if name in Image.OPEN]


# ---- metadata ------------------------------------------------------------------------------------------
def _upright_exif(raw: Any) -> bytes | None:
    """The EXIF block with Orientation = 1 (the pixels are now upright), or None.

    The value is patched in place so maker notes and offsets stay byte-identical; when the block cannot be
    walked, Pillow re-writes it; when even that fails, the block is dropped, since a stale orientation
    would make other programs rotate the saved image a second time.
    """
    if not isinstance(raw, bytes | bytearray) or not raw:
        return None
    patched = _patch_orientation(bytes(raw))
    if patched is not None:
        return patched
    try:
        exif = Image.Exif()
        exif.load(bytes(raw))
        exif[_ORIENTATION] = 1
        return exif.tobytes()
    except Exception:  # a broken EXIF block: drop it rather than fail the whole open
        return None


def _patch_orientation(raw: bytes) -> bytes | None:
    """Set IFD0's Orientation to 1 in place; `raw` unchanged when it has none; None when unreadable."""
    base = 6 if raw.startswith(b"Exif\x00\x00") else 0
    order = raw[base : base + 2]
    endian = {b"II": "<", b"MM": ">"}.get(order)
    if endian is None:
        return None
    try:
        if struct.unpack_from(endian + "H", raw, base + 2)[0] != 42:
            return None
        ifd0 = base + struct.unpack_from(endian + "I", raw, base + 4)[0]
        count = struct.unpack_from(endian + "H", raw, ifd0)[0]
        data = bytearray(raw)
        for i in range(count):
            entry = ifd0 + 2 + 12 * i
            tag, kind, n = struct.unpack_from(endian + "HHI", data, entry)
            if tag == _ORIENTATION:
                if kind != 3 or n != 1:  # not the SHORT the standard prescribes
                    return None
                struct.pack_into(endian + "H", data, entry + 8, 1)
                return bytes(data)
    except struct.error:
        return None
    return raw


def _read_parameters(im: Image.Image) -> str | None:
    """The A1111 text: the PNG "parameters" chunk, else a free-text field that holds such text."""
    text = im.info.get("parameters")
    if isinstance(text, str) and text:
        # iTXt values are a str subclass: hand out a plain str. Settings texts are a few KB; a huge one is
        # not settings, and it would ride into every export.
        return str(text) if len(text) <= MAX_PARAMETERS_CHARS else None
    candidates: list[str | None] = []
    try:
        exif = im.getexif()
        candidates.append(_decode_user_comment(exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)))
        candidates.append(_decode_text(exif.get(_IMAGE_DESCRIPTION)))
    except Exception:  # unreadable EXIF: the other fields may still hold the text
        pass
    candidates.append(_decode_text(im.info.get("comment")))
    return next((c for c in candidates if c and len(c) <= MAX_PARAMETERS_CHARS and looks_like_parameters(c)), None)


def _decode_user_comment(value: Any) -> str | None:
    """EXIF UserComment: an 8-byte character code, then the text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes) or len(value) < 8:
        return None
    code, body = value[:8], value[8:]
    if code == b"UNICODE\x00":
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            text = body.decode("utf-16", "replace")
        else:
            # A1111/piexif write UTF-16-BE whatever the EXIF byte order; others follow the byte order.
            # Mostly-ASCII text puts its zero bytes first in BE, second in LE.
            big = body[0::2].count(0) >= body[1::2].count(0)
            text = body.decode("utf-16-be" if big else "utf-16-le", "replace")
    elif code == b"ASCII\x00\x00\x00":
        text = body.decode("latin-1")
    else:  # undefined code: try UTF-8
        text = body.decode("utf-8", "replace")
    return text.rstrip("\x00 ")


def _decode_text(value: Any) -> str | None:
    if isinstance(value, str):
        # Pillow decodes TIFF ASCII fields as latin-1; we write them as UTF-8.
        try:
            return value.encode("latin-1").decode("utf-8").rstrip("\x00")
        except UnicodeError:
            return value.rstrip("\x00")
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8").rstrip("\x00")
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1").rstrip("\x00")
    return None


def _icc_space(icc: bytes | None) -> str | None:
    """The ICC profile's data colour space ('RGB', 'GRAY', 'CMYK', ...), or None when it is not a profile."""
    if not icc or len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return icc[16:20].decode("latin-1").strip()


# ---- mode conversion -------------------------------------------------------------------------------------
def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert a decoded image to "RGB"/"RGBA" by the module's rules; returns it and the ICC to keep."""
    space = _icc_space(icc)
    im = _promote_transparent_colour(im)
    mode = im.mode
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc if space == "CMYK" else None), None
    if mode in _INT16_MODES or mode == "I":
        im = _int_to_l(im)
    elif mode == "F":
        im = _float_to_l(im)
    elif mode == "1":
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = _other_to_rgb(im)

    if im.mode in ("L", "LA"):
        grey = im if im.mode == "L" else im.getchannel("L")
        rgb = _grey_to_srgb(grey, icc) if space == "GRAY" else grey.convert("RGB")
        icc = None  # a grey profile was applied; any other profile does not describe these pixels
        if im.mode == "LA":
            rgb.putalpha(im.getchannel("A"))
        im = rgb
    elif space != "RGB" or not _readable_profile(icc):
        icc = None
    if im.mode == "RGBA" and im.getchannel("A").getextrema()[0] == 255:
        im = im.convert("RGB")  # opaque everywhere: no real transparency
    return im, icc


def _readable_profile(icc: bytes | None) -> bool:
    """LittleCMS can parse it: a cut-off or corrupt profile would break colour management in other programs."""
    if icc is None or len(icc) < 132 or struct.unpack(">I", icc[:4])[0] != len(icc):
        return False  # the header's own size field says how long a complete profile is
    try:
        ImageCms.ImageCmsProfile(BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False
    return True


def _promote_transparent_colour(im: Image.Image) -> Image.Image:
    """A grey or RGB image with a transparent colour (PNG tRNS) gets a real alpha channel."""
    if im.mode in ("L", "RGB") and im.info.get("transparency") is not None:
        return im.convert("LA" if im.mode == "L" else "RGBA")
    return im


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc is not None:
        try:
            return ImageCms.profileToProfile(
                im,
                ImageCms.ImageCmsProfile(BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                outputMode="RGB",
                flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: the plain conversion below is better than no image
    return im.convert("RGB")


def _grey_to_srgb(grey: Image.Image, icc: bytes | None) -> Image.Image:
    try:
        return ImageCms.profileToProfile(
            grey,
            ImageCms.ImageCmsProfile(BytesIO(icc or b"")),
            ImageCms.createProfile("sRGB"),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return grey.convert("RGB")


def _other_to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "LAB":  # Pillow has no direct LAB -> RGB conversion; LittleCMS does
        try:
            return ImageCms.profileToProfile(
                im, ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, ValueError):
            pass
    return im.convert("RGB")


def _int_to_l(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit "I") grey to 8 bits by the scaling rule in the module docstring."""
    array = np.asarray(im)
    lo, hi = (int(array.min()), int(array.max())) if im.mode == "I" and array.size else (0, 0)
    if lo >= 0 and hi <= 65535:  # always true for the 16-bit modes

        def convert(block: np.ndarray) -> np.ndarray:
            return (block.astype(np.uint32) * 255 + 32767) // 65535

    else:
        span = max(float(hi) - float(lo), 1.0)

        def convert(block: np.ndarray) -> np.ndarray:
            return np.rint((block.astype(np.float64) - lo) * (255.0 / span))

    return Image.fromarray(_map_blocks(array, convert), "L")


def _float_to_l(im: Image.Image) -> Image.Image:
    """Float grey to 8 bits: 0..1 data scaled by 255 when its max is at most 1, else taken as 0..255."""
    array = np.asarray(im)
    hi = max((_finite_max(block) for block in _blocks(array)), default=0.0)
    scale = 255.0 if hi <= 1.0 else 1.0

    def convert(block: np.ndarray) -> np.ndarray:
        # A signalling NaN in the file makes the cast itself warn; it becomes 0 like any other NaN.
        with np.errstate(invalid="ignore"):
            block = np.nan_to_num(block.astype(np.float64), nan=0.0, posinf=255.0 / scale, neginf=0.0)
        return np.rint(block * scale)

    return Image.fromarray(_map_blocks(array, convert), "L")


def _finite_max(block: np.ndarray) -> float:
    finite = block[np.isfinite(block)]
    return float(finite.max()) if finite.size else 0.0


def _blocks(array: np.ndarray) -> list[np.ndarray]:
    """Row blocks of about _CHUNK_ELEMENTS values (views, no copies)."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, array.shape[1]))
    return [array[i : i + rows] for i in range(0, array.shape[0], rows)]


def _map_blocks(array: np.ndarray, convert: Any) -> np.ndarray:
    """Apply `convert` block by block and clip into a uint8 array (bounded temporary memory)."""
    out = np.empty(array.shape[:2], dtype=np.uint8)
    start = 0
    for block in _blocks(array):
        out[start : start + block.shape[0]] = np.clip(convert(block), 0, 255)
        start += block.shape[0]
    return out


def _to_mask(im: Image.Image) -> Image.Image:
    """Any decoded mask image to "L" by the rules in the module docstring."""
    im = _promote_transparent_colour(im)
    mode = im.mode
    if mode in _INT16_MODES or mode == "I":
        return _int_to_l(im)
    if mode == "F":
        return _float_to_l(im)
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        alpha = im.getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha
        if mode in ("LA", "La"):
            return im.getchannel("L")
        return im.convert("RGB").convert("L")
    if mode == "L":
        return im
    if mode in ("1", "P"):
        return im.convert("L")
    return im.convert("RGB").convert("L")


# ---- saving ----------------------------------------------------------------------------------------------
def save_image(
    image: Image.Image,
    path: str | os.PathLike[str],
    *,
    parameters: str | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
) -> Path:
    """Write `image` to `path` atomically, in the format its extension names; returns the path.

    Formats: .png .jpg .jpeg .webp .tif .tiff .bmp (any case); another extension is a BadInputError that
    lists these. Per format:

    * PNG: `parameters` as a text chunk named "parameters" (tEXt, or iTXt when it is not Latin-1: the A1111
      convention, `Image.open(p).info["parameters"]` reads it), the ICC profile, the EXIF block.
    * JPEG: `quality` (with full-resolution colour, 4:4:4, from quality 90 up), ICC, EXIF, and
      `parameters` both in the EXIF UserComment (where A1111 puts it) and as a JPEG comment (what other
      tools read); a text too long for one JPEG segment is left out of that segment.
    * WebP: `quality`, ICC, EXIF with `parameters` in its UserComment.
    * TIFF: lossless Deflate compression, ICC, EXIF, `parameters` as the ImageDescription (UTF-8).
    * BMP: pixels only.

    Modes: a mode the format cannot store is converted to "RGB", or "RGBA" when it has transparency;
    transparency is flattened over white for JPEG and BMP. An ICC profile whose colour space does not match
    the pixels (e.g. RGB on a grey image) is left out. The EXIF Orientation is written as 1, because the
    pixels are saved upright.

    Atomic: the data goes to a temporary file in the same folder, is flushed and fsync'ed, then moved over
    `path` with os.replace; on any failure the temporary file is removed and an existing file at `path`
    is untouched. A new file gets the usual permissions (umask), a replaced file keeps its own.
    Raises BadInputError for an unknown extension, a bad quality, a missing or unwritable folder, a full
    disk, an image too large for the format, or an encoder failure.
    """
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        named = f"'{p.suffix}'" if p.suffix else "a name without an extension"
        raise BadInputError(
            f"Cannot save '{p}' because {named} is not a supported file type; use one of {_SUPPORTED_EXTENSIONS}."
        )
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise BadInputError(f"Quality is {quality!r}; use a whole number from 1 to 100.")
    if p.is_dir():
        raise BadInputError(
            f"Cannot save to '{p}' because it is a folder; choose a file name such as '{p / 'result.png'}'."
        )
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(image.size) > limit:
        raise BadInputError(
            f"Cannot save '{p}': the image is {image.width}x{image.height} but {fmt} stores at most "
            f"{limit} pixels per side; save it as PNG or TIFF instead."
        )

    prepared = _prepare_mode(image, fmt)
    options = _save_options(prepared, fmt, parameters, icc_profile, exif, quality)
    target = p.resolve() if p.is_symlink() else p  # replace the file a link points to, not the link
    atomic_write(target, lambda fh: prepared.save(fh, format=fmt, **options), shown=p)
    return p


_STORABLE_MODES: Final = {
    "PNG": frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"}),
    "JPEG": frozenset({"L", "RGB", "CMYK"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "TIFF": frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"}),
    "BMP": frozenset({"1", "L", "P", "RGB"}),
}
_ALPHA_FORMATS: Final = frozenset({"PNG", "WEBP", "TIFF"})


def _prepare_mode(image: Image.Image, fmt: str) -> Image.Image:
    has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if image.mode in _STORABLE_MODES[fmt] and not (has_alpha and fmt not in _ALPHA_FORMATS):
        return image
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if fmt in _ALPHA_FORMATS:
        return rgba
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _save_options(
    image: Image.Image,
    fmt: str,
    parameters: str | None,
    icc_profile: bytes | None,
    exif: bytes | None,
    quality: int,
) -> dict[str, Any]:
    space = _icc_space(icc_profile)
    wanted_space = {"CMYK": "CMYK"}.get(image.mode, "GRAY" if image.mode in ("1", "L", "LA") else "RGB")
    # Always explicit: some Pillow encoders fall back to image.info, which may hold a stale profile.
    options: dict[str, Any] = {"icc_profile": icc_profile if space == wanted_space else None}
    exif_block = _upright_exif(exif) if exif else None

    if fmt == "PNG":
        if parameters is not None:
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_text("parameters", parameters)  # tEXt when Latin-1, else iTXt (UTF-8)
            options["pnginfo"] = info
        if exif_block:
            options["exif"] = exif_block
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
        if fmt == "JPEG" and quality >= 90:
            options["subsampling"] = 0  # 4:4:4: no colour smearing along painted edges
        if parameters is not None:
            with_comment = _exif_with_user_comment(exif_block, parameters)
            if fmt == "WEBP" or len(with_comment) <= _MAX_JPEG_SEGMENT:
                exif_block = with_comment
        comment = parameters.encode("utf-8") if parameters is not None else b""
        if fmt == "JPEG":  # explicit, for the same reason as the profile
            options["comment"] = comment if len(comment) <= _MAX_JPEG_SEGMENT else b""
        if exif_block and (fmt == "WEBP" or len(exif_block) <= _MAX_JPEG_SEGMENT):
            options["exif"] = exif_block
    elif fmt == "TIFF":
        options["compression"] = "tiff_adobe_deflate"
        if parameters is not None:
            options["description"] = parameters.encode("utf-8")
        if exif_block:
            options["exif"] = exif_block
    return options


def _exif_with_user_comment(exif_block: bytes | None, text: str) -> bytes:
    """`exif_block` (or a new one) with UserComment = `text`: ASCII code when it fits, else UNICODE."""
    try:
        comment = b"ASCII\x00\x00\x00" + text.encode("ascii")
    except UnicodeEncodeError:
        comment = b"UNICODE\x00" + text.encode("utf-16-be")  # the A1111/piexif convention
    exif = Image.Exif()
    if exif_block:
        try:
            exif.load(exif_block)
        except Exception:  # unreadable: keep the settings text at least
            exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = comment
    return exif.tobytes()
