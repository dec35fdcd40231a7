"""A corpus of broken and unusual image and mask files, generated (never downloaded).

Every case is built from code into a test's folder, so the corpus is reproducible and needs no network:
what cameras, phones and other editors write (CMYK, 16-bit, float TIFF, palettes with transparency, grey +
alpha, animations, multi-page TIFF, EXIF orientations, odd ICC profiles, extreme sizes) and what goes wrong
with files (zero bytes, truncated, wrong extension, not an image at all, decompression bombs).

A case says what must happen: it opens, as RGB or RGBA at a known upright size (`opens=True`, and an
optional pixel check), or it is refused with one sentence that contains `error`. `rule` is the documented
behaviour (docs/reliability.md lists them; the full rules are in `inpaint_studio.core.imageio`'s docstring).
The same table runs through `load_image`/`load_mask`, the `inpaint` command line and the window's Open.

`make_project()` builds a small project with a history (a generation with recorded inputs) for the
project tests and the fuzzer.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from inpaint_studio.core.imageio import LoadedImage

# ---- byte-level builders ---------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its correct CRC (so a decoder goes past the checksum into the data)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes, *extra: bytes) -> bytes:
    """A PNG from its parts: IHDR, extra chunks (before IDAT), one IDAT holding `idat`, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(extra)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 48, height: int = 32, seed: int = 0) -> np.ndarray:
    """RGB gradients + noise: every pixel distinct enough to catch shifts and rotations."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(1, width) * 220, y / max(1, height) * 220, (x + y) % 64 * 3], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def quadrants(width: int = 64, height: int = 48) -> np.ndarray:
    """Four flat colours (red, green / blue, white): orientation survives JPEG and is easy to read."""
    out = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    out[:h2, :w2] = (255, 0, 0)
    out[:h2, w2:] = (0, 255, 0)
    out[h2:, :w2] = (0, 0, 255)
    out[h2:, w2:] = (255, 255, 255)
    return out


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "CorpusCam"
    return exif.tobytes()


@functools.cache  # the profile holds its creation time: build it once so it compares equal
def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def lab_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF frame header claiming another size (what a decompression bomb does)."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = out.find(marker)
        if at >= 0:
            struct.pack_into(">HH", out, at + 5, height, width)
            return bytes(out)
    raise AssertionError("no SOF marker")


def patch_tiff_size(data: bytes, width: int, height: int) -> bytes:
    """The (little-endian) TIFF with ImageWidth/ImageLength set to another size."""
    out = bytearray(data)
    assert out[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", out, 4)[0]
    for i in range(struct.unpack_from("<H", out, ifd)[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", out, entry)
        value = {256: width, 257: height}.get(tag)
        if value is not None:
            struct.pack_into("<H" if kind == 3 else "<I", out, entry + 8, value)
    return bytes(out)


def gif_bomb() -> bytes:
    """A GIF whose screen and only frame claim 65535x65535 pixels, with almost no data."""
    screen = struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def sixteen_bit_rgb_png(width: int = 8, height: int = 4) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG: Pillow cannot write one, cameras' raw converters do."""
    values = (np.arange(width * height * 3, dtype=np.uint32) * 997 % 65536).astype(">u2").reshape(height, width * 3)
    rows = b"".join(b"\x00" + row.tobytes() for row in values)
    return raw_png(width, height, 16, 2, zlib.compress(rows))


def animated(fmt: str, colours: tuple[str, ...] = ("red", "lime", "blue")) -> bytes:
    frames = [Image.new("RGB", (16, 12), c) for c in colours]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    if fmt in ("GIF", "WEBP", "PNG"):
        options.update(duration=100, loop=0)
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(frames[0], fmt, **options)


def eps() -> bytes:
    # PostScript: Pillow would hand this to Ghostscript, a program we never run on a user's file.
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"


# ---- the image corpus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One file and what must happen when it is opened (see the module docstring)."""

    name: str
    filename: str
    data: Callable[[], bytes] | None  # None: `special` says what to create
    opens: bool
    rule: str
    size: tuple[int, int] | None = None  # (width, height) after EXIF orientation
    mode: str = "RGB"
    error: str = ""
    check: Callable[[LoadedImage], None] | None = None
    special: str = ""  # "folder" | "missing"

    def write(self, folder: Path) -> Path:
        path = folder / self.name / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.special == "folder":
            path.mkdir(exist_ok=True)
        elif self.special != "missing":
            assert self.data is not None
            path.write_bytes(self.data())
        return path


def _pixels(loaded: LoadedImage) -> np.ndarray:
    return np.asarray(loaded.image)


def _first_frame_red(loaded: LoadedImage) -> None:
    rgb = _pixels(loaded)[..., :3].astype(int)
    assert abs(rgb[..., 0].mean() - 255) < 3 and rgb[..., 1:].mean() < 3, "not the first frame (red)"


def _upright_quadrants(loaded: LoadedImage) -> None:
    rgb = _pixels(loaded).astype(int)
    h, w = rgb.shape[:2]
    expected = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 255)}
    for (qy, qx), colour in expected.items():
        block = rgb[qy * h // 2 + 4 : (qy + 1) * h // 2 - 4, qx * w // 2 + 4 : (qx + 1) * w // 2 - 4]
        assert np.abs(block.mean(axis=(0, 1)) - colour).max() < 24, f"quadrant {qy},{qx} is not {colour}"
    exif = Image.Exif()
    exif.load(loaded.exif or b"")
    assert exif.get(0x0112, 1) == 1, "the returned EXIF would rotate the pixels a second time"


def _exact(expected: Callable[[], np.ndarray]) -> Callable[[LoadedImage], None]:
    def check(loaded: LoadedImage) -> None:
        assert np.array_equal(_pixels(loaded), expected()), "pixels differ from the stored ones"

    return check


def _icc_kept(loaded: LoadedImage) -> None:
    assert loaded.icc_profile == srgb_profile(), "an RGB profile that fits must be kept"


def _icc_dropped(loaded: LoadedImage) -> None:
    assert loaded.icc_profile is None, "a profile that does not describe these pixels must be dropped"


def _sixteen_bit_grey(loaded: LoadedImage) -> None:
    values = _pixels(loaded)[0, :, 0]
    assert values[0] == 0 and values[-1] == 255 and values[len(values) // 2] in (127, 128), "16 bits not scaled"


def _no_parameters(loaded: LoadedImage) -> None:
    assert loaded.parameters is None, "an oversized parameters text must be ignored"


def _float_unit(loaded: LoadedImage) -> None:
    row = _pixels(loaded)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255, "0..1 float data must map to 0..255"


def _transparent_corner(loaded: LoadedImage) -> None:
    assert _pixels(loaded)[0, 0, 3] == 0 and _pixels(loaded)[-1, -1, 3] == 255


def _orientation_case(orientation: int) -> Case:
    transposes = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,  # stored rotated back: exif_transpose turns it upright
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }

    def data() -> bytes:
        upright = Image.fromarray(quadrants())
        method = transposes[orientation]
        stored = upright if method is None else upright.transpose(method)
        return encode(stored, "JPEG", quality=95, exif=exif_with_orientation(orientation))

    return Case(
        f"exif-orientation-{orientation}",
        f"IMG_{orientation:04d}.jpg",
        data,
        True,
        "EXIF orientation applied (all 8); the returned EXIF says 1",
        (64, 48),
        check=_upright_quadrants,
    )


def _rgba_with_hole() -> np.ndarray:
    rgba = np.dstack([photo(40, 30), np.full((30, 40), 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    return rgba


def _palette_with_transparency() -> bytes:
    image = Image.fromarray(photo(40, 30)).quantize(16)
    pixels = np.asarray(image).copy()
    pixels[:10, :10] = 15
    image = Image.fromarray(pixels, "P")
    image.putpalette(Image.fromarray(photo(40, 30)).quantize(16).getpalette())
    return encode(image, "PNG", transparency=15)


def _grey_alpha() -> bytes:
    la = np.dstack([photo(40, 30)[..., 0], np.full((30, 40), 255, np.uint8)])
    la[:10, :10, 1] = 0
    return encode(Image.fromarray(la, "LA"), "PNG")


def _multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (16, 12), c) for c in ("red", "lime")]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def _float_tiff(values: np.ndarray) -> Callable[[], bytes]:
    return lambda: encode(Image.fromarray(values.astype(np.float32), "F"), "TIFF")


def _with_icc(icc: bytes) -> Callable[[], bytes]:
    return lambda: encode(Image.fromarray(photo(24, 16)), "PNG", icc_profile=icc)


def _big_text_chunk() -> bytes:
    # 20 MB of "parameters" text in one chunk: no settings text is that long, and it would ride into exports.
    text = png_chunk(b"tEXt", b"parameters\x00" + b"a" * (20 * 2**20))
    return raw_png(1, 1, 8, 0, zlib.compress(b"\x00\x80"), text)


def _damaged_idat() -> bytes:
    data = bytearray(encode(Image.fromarray(photo()), "PNG", compress_level=9))
    at = data.find(b"IDAT") + 20
    data[at : at + 8] = b"\x00" * 8
    return bytes(data)


def _heic() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


def _svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def _png() -> bytes:
    return encode(Image.fromarray(photo()), "PNG")


def _jpeg() -> bytes:
    return encode(Image.fromarray(photo()), "JPEG", quality=92)


def _cut(data: Callable[[], bytes], keep: float) -> Callable[[], bytes]:
    return lambda: data()[: int(len(data()) * keep)]


def _webp() -> bytes:
    return encode(Image.fromarray(photo()), "WEBP", quality=90)


def _tiff() -> bytes:
    return encode(Image.fromarray(photo()), "TIFF")


IMAGE_CASES: tuple[Case, ...] = (
    Case("png", "photo.png", _png, True, "8-bit RGB PNG as is", (48, 32), check=_exact(lambda: photo())),
    Case("jpeg", "photo.jpg", _jpeg, True, "baseline JPEG", (48, 32)),
    Case("webp", "photo.webp", _webp, True, "lossy WebP", (48, 32)),
    Case("tiff", "photo.tif", _tiff, True, "uncompressed RGB TIFF", (48, 32), check=_exact(lambda: photo())),
    Case("bmp", "photo.bmp", lambda: encode(Image.fromarray(photo()), "BMP"), True, "BMP", (48, 32)),
    *(
        Case(f"zero-bytes-{ext}", f"empty.{ext}", lambda: b"", False, "0 bytes: refused", error="empty (0 bytes)")
        for ext in ("png", "jpg", "webp", "tif")
    ),
    *(
        Case(f"truncated-{ext}", f"cut.{ext}", _cut(make, 0.5), False, "cut off: refused", error="damaged")
        for ext, make in (("png", _png), ("jpg", _jpeg), ("webp", _webp), ("tif", _tiff))
    ),
    Case("header-only-png", "cut.png", _cut(_png, 0.05), False, "only a header: refused", error="damaged"),
    Case("damaged-idat", "crc.png", _damaged_idat, False, "corrupt pixel data: refused", error="damaged"),
    Case("png-named-jpg", "really-a-png.jpg", _png, True, "the content decides, not the extension", (48, 32)),
    Case("jpeg-named-png", "really-a-jpeg.png", _jpeg, True, "the content decides, not the extension", (48, 32)),
    Case(
        "text-named-png", "notes.png", lambda: b"shopping list\n", False, "not an image", error="file this app can read"
    ),
    Case("svg-named-png", "logo.png", _svg, False, "SVG is not read", error="file this app can read"),
    Case("eps", "drawing.eps", eps, False, "EPS is never opened (it runs Ghostscript)", error="file this app can read"),
    Case("heic", "IMG_0003.HEIC", _heic, False, "HEIC: refused with export advice", error="HEIC"),
    Case("folder", "holiday.png", None, False, "a folder: refused", error="is a folder", special="folder"),
    Case("missing", "gone.jpg", None, False, "a missing file: refused", error="does not exist", special="missing"),
    *(
        Case(
            f"one-pixel-{fmt.lower()}",
            f"dot.{ext}",
            (lambda f=fmt: encode(Image.new("RGB", (1, 1), "red"), f)),
            True,
            "1x1 is an image",
            (1, 1),
        )
        for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tif"), ("GIF", "gif"))
    ),
    Case(
        "very-wide",
        "panorama.png",
        lambda: encode(Image.new("RGB", (30000, 2), "navy"), "PNG"),
        True,
        "30000x2 opens",
        (30000, 2),
    ),
    Case(
        "very-tall",
        "strip.png",
        lambda: encode(Image.new("L", (2, 30000), 90), "PNG"),
        True,
        "2x30000 opens",
        (2, 30000),
    ),
    Case(
        "bomb-png",
        "bomb.png",
        lambda: raw_png(20000, 20000, 1, 0, zlib.compress(b"\x00" * 64)),
        False,
        "400 MP PNG: refused before decoding",
        error="more than the 250,000,000",
    ),
    Case(
        "bomb-jpeg",
        "bomb.jpg",
        lambda: patch_jpeg_size(_jpeg(), 60000, 60000),
        False,
        "3.6 GP JPEG header: refused before decoding",
        error="more than the 250,000,000",
    ),
    Case(
        "bomb-tiff",
        "bomb.tif",
        lambda: patch_tiff_size(_tiff(), 60000, 60000),
        False,
        "3.6 GP TIFF header: refused before decoding",
        error="250,000,000",
    ),
    Case(
        "tiff-short-strips",
        "short.tif",
        lambda: patch_tiff_size(_tiff(), 48, 3_000_000),
        False,
        "strips cover 32 of 3,000,000 rows: refused before decoding (not zero-filled)",
        error="covers 1,536 of 144,000,000",
    ),
    Case("bomb-gif", "bomb.gif", gif_bomb, False, "65535x65535 GIF: refused", error="250,000,000"),
    Case(
        "cmyk-jpeg",
        "print.jpg",
        lambda: encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
        True,
        "CMYK -> sRGB (profile if any, else plain)",
        (40, 30),
    ),
    Case(
        "cmyk-tiff",
        "print.tif",
        lambda: encode(Image.new("CMYK", (40, 30), (0, 0, 0, 255)), "TIFF"),
        True,
        "CMYK TIFF -> sRGB",
        (40, 30),
    ),
    Case(
        "grey-16-png",
        "scan16.png",
        lambda: encode(Image.fromarray(np.tile(np.linspace(0, 65535, 33).astype(np.uint16), (4, 1))), "PNG"),
        True,
        "16-bit grey scaled (65535 -> 255)",
        (33, 4),
        check=_sixteen_bit_grey,
    ),
    Case(
        "grey-16-tiff",
        "scan16.tif",
        lambda: encode(Image.fromarray(np.tile(np.linspace(0, 65535, 33).astype(np.uint16), (4, 1))), "TIFF"),
        True,
        "16-bit grey TIFF scaled",
        (33, 4),
        check=_sixteen_bit_grey,
    ),
    Case("rgb-48-png", "raw48.png", sixteen_bit_rgb_png, True, "48-bit RGB PNG -> 8 bits per channel", (8, 4)),
    Case(
        "float-tiff-unit",
        "hdr01.tif",
        _float_tiff(np.tile(np.linspace(0, 1, 16), (4, 1))),
        True,
        "float 0..1 scaled by 255",
        (16, 4),
        check=_float_unit,
    ),
    Case(
        "float-tiff-255",
        "hdr255.tif",
        _float_tiff(np.tile(np.linspace(0, 300, 16), (4, 1))),
        True,
        "float above 1 taken as 0..255, clipped",
        (16, 4),
    ),
    Case(
        "float-tiff-nan",
        "nan.tif",
        _float_tiff(np.array([[np.nan, np.inf, -np.inf, 0.5]] * 2)),
        True,
        "NaN -> 0, inf clipped",
        (4, 2),
    ),
    Case(
        "palette-transparency",
        "icon.png",
        _palette_with_transparency,
        True,
        "palette + tRNS -> RGBA",
        (40, 30),
        "RGBA",
        check=_transparent_corner,
    ),
    Case(
        "grey-alpha",
        "cutout.png",
        _grey_alpha,
        True,
        "grey + alpha -> RGBA",
        (40, 30),
        "RGBA",
        check=_transparent_corner,
    ),
    Case(
        "rgba",
        "layer.png",
        lambda: encode(Image.fromarray(_rgba_with_hole(), "RGBA"), "PNG"),
        True,
        "RGBA with transparency kept",
        (40, 30),
        "RGBA",
        check=_exact(_rgba_with_hole),
    ),
    Case(
        "rgba-opaque",
        "flat.png",
        lambda: encode(Image.fromarray(np.dstack([photo(), np.full((32, 48), 255, np.uint8)]), "RGBA"), "PNG"),
        True,
        "alpha 255 everywhere -> RGB",
        (48, 32),
        "RGB",
    ),
    Case(
        "grey-jpeg", "bw.jpg", lambda: encode(Image.fromarray(photo()[..., 0]), "JPEG"), True, "grey -> RGB", (48, 32)
    ),
    Case(
        "bilevel",
        "fax.tif",
        lambda: encode(Image.fromarray(photo()[..., 0] > 100), "TIFF"),
        True,
        "1-bit -> RGB",
        (48, 32),
    ),
    Case(
        "lab-tiff",
        "lab.tif",
        lambda: encode(Image.new("LAB", (20, 10), (50, 0, 0)), "TIFF"),
        True,
        "LAB -> sRGB through LittleCMS",
        (20, 10),
    ),
    Case("animated-gif", "anim.gif", lambda: animated("GIF"), True, "first frame", (16, 12), check=_first_frame_red),
    Case("animated-webp", "anim.webp", lambda: animated("WEBP"), True, "first frame", (16, 12), check=_first_frame_red),
    Case(
        "animated-png",
        "anim.png",
        lambda: animated("PNG"),
        True,
        "first frame (APNG)",
        (16, 12),
        check=_first_frame_red,
    ),
    Case("multipage-tiff", "pages.tif", _multipage_tiff, True, "first page", (16, 12), check=_first_frame_red),
    Case(
        "optimised-png",
        "small.png",
        lambda: encode(Image.fromarray(photo()), "PNG", optimize=True),
        True,
        "optimised PNG",
        (48, 32),
    ),
    Case(
        "progressive-jpeg",
        "web.jpg",
        lambda: encode(Image.fromarray(photo()), "JPEG", progressive=True),
        True,
        "progressive JPEG",
        (48, 32),
    ),
    *(_orientation_case(o) for o in range(1, 9)),
    Case(
        "icc-srgb", "tagged.png", _with_icc(srgb_profile()), True, "an RGB profile is kept", (24, 16), check=_icc_kept
    ),
    Case(
        "icc-garbage",
        "garbage-icc.png",
        _with_icc(b"not a colour profile at all" * 8),
        True,
        "a profile that is not one is dropped",
        (24, 16),
        check=_icc_dropped,
    ),
    Case(
        "icc-truncated",
        "cut-icc.png",
        _with_icc(srgb_profile()[:300]),
        True,
        "a cut-off profile is dropped",
        (24, 16),
        check=_icc_dropped,
    ),
    Case(
        "icc-wrong-space",
        "lab-icc.png",
        _with_icc(lab_profile()),
        True,
        "a profile for other data (LAB on RGB) is dropped",
        (24, 16),
        check=_icc_dropped,
    ),
    Case(
        "huge-text-chunk",
        "chatty.png",
        _big_text_chunk,
        True,
        "a 20 MB 'parameters' text is ignored (over 64 KiB it is not settings); the picture opens",
        (1, 1),
        "RGB",
        check=lambda loaded: _no_parameters(loaded),
    ),
    Case(
        "parameters",
        "generated.png",
        lambda: encode(Image.fromarray(photo()), "PNG", pnginfo=_parameters_info()),
        True,
        "A1111 parameters are read (the window offers them)",
        (48, 32),
    ),
)


def _parameters_info() -> object:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a red barn\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 48x32")
    return info


# ---- the mask corpus -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskCase:
    """A mask file, the upright size it must have and the values `load_mask` must give (None: refused)."""

    name: str
    filename: str
    data: Callable[[], bytes]
    rule: str
    size: tuple[int, int] = (48, 32)
    expected: Callable[[], np.ndarray] | None = None
    error: str = ""
    cli_error: str = ""  # what the inpaint command says about a mask that opens but cannot be used

    def write(self, folder: Path) -> Path:
        path = folder / f"mask-{self.name}" / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data())
        return path


def soft_mask(width: int = 48, height: int = 32) -> np.ndarray:
    """A disc with a soft edge: 255 inside, a ramp of grey values, 0 outside."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(x - width / 2, y - height / 2)
    return np.clip((14 - distance) * 40, 0, 255).astype(np.uint8)


def _as_rgba_alpha(mask: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = mask
    return rgba


def _rotated_mask() -> bytes:
    stored = np.ascontiguousarray(np.rot90(soft_mask(48, 32), 1))  # 32 wide, 48 tall, shown rotated back
    return encode(Image.fromarray(stored), "PNG", exif=exif_with_orientation(6))


MASK_CASES: tuple[MaskCase, ...] = (
    MaskCase(
        "soft-edges",
        "soft.png",
        lambda: encode(Image.fromarray(soft_mask()), "PNG"),
        "grey values kept as they are",
        expected=soft_mask,
    ),
    MaskCase(
        "all-grey-128",
        "grey128.png",
        lambda: encode(Image.new("L", (48, 32), 128), "PNG"),
        "128 everywhere: all selected (the classical fill needs some unmasked pixels)",
        expected=lambda: np.full((32, 48), 128, np.uint8),
        cli_error="covers the whole image",
    ),
    MaskCase(
        "all-grey-127",
        "grey127.png",
        lambda: encode(Image.new("L", (48, 32), 127), "PNG"),
        "127 everywhere: below the 50 % threshold, an empty mask",
        expected=lambda: np.full((32, 48), 127, np.uint8),
        cli_error="mask is empty",
    ),
    MaskCase(
        "all-black",
        "black.png",
        lambda: encode(Image.new("L", (48, 32), 0), "PNG"),
        "nothing painted: an empty mask",
        expected=lambda: np.zeros((32, 48), np.uint8),
        cli_error="mask is empty",
    ),
    MaskCase(
        "rgba-alpha",
        "layer.png",
        lambda: encode(Image.fromarray(_as_rgba_alpha(soft_mask()), "RGBA"), "PNG"),
        "RGBA: the alpha channel",
        expected=soft_mask,
    ),
    MaskCase(
        "rgb-luminance",
        "bw.png",
        lambda: encode(Image.fromarray(soft_mask()).convert("RGB"), "PNG"),
        "RGB: luminance",
        expected=soft_mask,
    ),
    MaskCase(
        "bilevel",
        "bits.png",
        lambda: encode(Image.fromarray(soft_mask() >= 128), "PNG"),
        "1-bit: 0/255",
        expected=lambda: np.where(soft_mask() >= 128, 255, 0).astype(np.uint8),
    ),
    MaskCase(
        "sixteen-bit",
        "m16.png",
        lambda: encode(Image.fromarray(soft_mask().astype(np.uint16) * 257), "PNG"),
        "16-bit scaled",
        expected=soft_mask,
    ),
    MaskCase(
        "float-tiff",
        "mf.tif",
        lambda: encode(Image.fromarray(soft_mask().astype(np.float32) / 255, "F"), "TIFF"),
        "float 0..1 scaled",
        expected=soft_mask,
    ),
    MaskCase(
        "grey-alpha",
        "la.png",
        lambda: encode(Image.fromarray(np.dstack([np.zeros((32, 48), np.uint8), soft_mask()]), "LA"), "PNG"),
        "LA: the alpha channel",
        expected=soft_mask,
    ),
    MaskCase(
        "exif-rotated",
        "rotated.png",
        _rotated_mask,
        "EXIF orientation applied before the size check",
        expected=soft_mask,
    ),
    MaskCase(
        "jpeg", "mask.jpg", lambda: encode(Image.fromarray(soft_mask()), "JPEG", quality=95), "JPEG: lossy grey values"
    ),
    MaskCase(
        "wrong-size",
        "small.png",
        lambda: encode(Image.new("L", (20, 10), 255), "PNG"),
        "another size: refused naming both sizes",
        size=(20, 10),
        error="but the image is",
    ),
    MaskCase(
        "truncated",
        "cut.png",
        _cut(lambda: encode(Image.fromarray(soft_mask()), "PNG"), 0.5),
        "cut off: refused",
        error="damaged",
    ),
    MaskCase("zero-bytes", "empty.png", lambda: b"", "0 bytes: refused", error="empty (0 bytes)"),
)


# ---- a project with a history ----------------------------------------------------------------------------


def make_project(width: int = 80, height: int = 56, seed: int = 0):  # -> inpaint_studio.core.project.Project
    """A document with three layers and a mask, and a history: opened, a stroke, a generation with inputs."""
    from inpaint_studio.core.document import Document, Layer
    from inpaint_studio.core.history import History, TiledArray, capture
    from inpaint_studio.core.jobspec import InpaintJob
    from inpaint_studio.core.project import Project

    rng = np.random.default_rng(seed)
    base = Layer(name="Background", pixels=rng.integers(0, 256, (height, width, 4), dtype=np.uint8), kind="base")
    base.pixels[..., 3] = 255
    doc = Document(width, height, [base])
    doc.metadata.update(path="/photos/barn.jpg", parameters="a barn\nSteps: 20, Sampler: Euler, Seed: 3")
    history = History()
    history.add("open", "Opened barn.jpg", snapshot=capture(doc))
    doc.mask[10:30, 20:50] = 255
    history.add("mask", "Mask stroke", snapshot=capture(doc, history.head.snapshot))
    result = Layer(name="a red door", pixels=np.zeros((height, width, 4), np.uint8), kind="result", opacity=0.8)
    result.pixels[10:30, 20:50] = (200, 30, 30, 255)
    result.metadata = {"history_id": 3, "seed": 7}
    doc.layers.append(result)
    job = InpaintJob(model="classic", prompt="a red door", seed=7).to_dict()
    entry = history.add(
        "generate",
        "a red door",
        params={"job": job, "seed": 7, "device": "cpu", "variant": 0},
        duration_s=0.4,
        snapshot=capture(doc, history.head.snapshot),
    )
    entry.inputs = {"image": TiledArray.capture(base.pixels), "mask": TiledArray.capture(doc.mask)}
    return Project(
        document=doc,
        history=history,
        generate=InpaintJob(prompt="next", seed=9).to_dict(),
        extra={"generate_panel": {"seed_text": "9", "seed_locked": True}},
    )
