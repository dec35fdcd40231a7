"""Image and mask I/O: every input is generated here, in tmp_path (nothing is downloaded)."""

from __future__ import annotations

import errno
import io
import itertools
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from inpaint_studio.core import atomic, imageio
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import (
    MAX_IMAGE_PIXELS,
    SAVE_FORMATS,
    LoadedImage,
    load_image,
    load_mask,
    save_image,
)

EXTS = ("png", "jpg", "webp", "tif")
_IMPERATIVES = ("check", "pick", "copy", "use", "open", "scale", "export", "choose", "free", "close", "save", "try")


# ---- helpers ---------------------------------------------------------------------------------------------
def assert_actionable(exc: pytest.ExceptionInfo[BadInputError], path: Path) -> str:
    """One sentence that names the file and ends with what to do."""
    msg = str(exc.value)
    assert str(path) in msg, msg
    assert msg.endswith("."), msg
    assert "\n" not in msg and ". " not in msg.replace(str(path), "PATH"), msg
    advice = msg.rsplit("; ", 1)[-1]
    assert advice != msg and advice.startswith(_IMPERATIVES), msg
    return msg


def rgb(*rows: list[tuple[int, int, int]]) -> Image.Image:
    return Image.fromarray(np.array(rows, dtype=np.uint8), "RGB")


def asymmetric() -> np.ndarray:
    """3 wide x 2 tall, six different colours: every flip or rotation changes it."""
    return np.array(
        [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), (255, 0, 255)]],
        dtype=np.uint8,
    )


def exif_bytes(orientation: int | None = None, **extra: object) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make: must survive the orientation reset
    for tag, value in extra.items():
        exif[int(tag.removeprefix("t"))] = value
    return exif.tobytes()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (the IDAT holds nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def noise(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def _icc(space: bytes, pcs: bytes, device_class: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 profile with the given tags."""
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    d50 = _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    header = (
        struct.pack(">I", offset + len(body))
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + pcs
        + bytes(12)
        + b"acsp"
        + bytes(28)
        + d50
        + bytes(48)
    )
    assert len(header) == 128
    return header + table + body


def _lab_d50(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """CIELAB (D50, the ICC PCS) of an sRGB colour whose channels are 0 or 255 (so linear = value/255)."""
    srgb_to_xyz_d50 = np.array(
        [[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169], [0.0139322, 0.0971045, 0.7141733]]
    )
    xyz = srgb_to_xyz_d50 @ (np.array(rgb) / 255.0) / np.array([0.9642, 1.0, 0.8249])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def swapped_cmyk_icc() -> bytes:
    """A CMYK profile in which cyan ink comes out magenta: proves the profile, not Pillow, converted."""
    clut = b""
    for c, m, y, k in itertools.product((0, 1), repeat=4):  # the 16 corners of the CMYK cube
        L, a, b = _lab_d50((255 * (1 - m) * (1 - k), 255 * (1 - c) * (1 - k), 255 * (1 - y) * (1 - k)))
        clut += struct.pack(">HHH", round(L / 100 * 0xFF00), round((a + 128) * 256), round((b + 128) * 256))
    identity = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ramp = struct.pack(">HH", 0, 65535)
    lut = b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + identity + struct.pack(">HH", 2, 2)
    lut += ramp * 4 + clut + ramp * 3
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    return _icc(b"CMYK", b"Lab ", b"prtr", [(b"A2B0", lut), (b"wtpt", wtpt)])


def linear_grey_icc() -> bytes:
    """A grey profile with gamma 1.0: mid-grey 128 becomes about 188 in sRGB."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    return _icc(b"GRAY", b"XYZ ", b"mntr", [(b"kTRC", curve), (b"wtpt", wtpt)])


def encoded(image: Image.Image, ext: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format={"jpg": "JPEG", "tif": "TIFF"}.get(ext, ext.upper()), **kw)
    return buf.getvalue()


# ---- errors on load --------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.jpg"
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "does not exist" in assert_actionable(exc, path)


def test_folder(tmp_path: Path) -> None:
    path = tmp_path / "holiday.png"
    path.mkdir()
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "is a folder" in assert_actionable(exc, path)


@pytest.mark.parametrize("ext", EXTS)
def test_zero_byte_file(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"empty.{ext}"
    path.write_bytes(b"")
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "empty (0 bytes)" in assert_actionable(exc, path)


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file(tmp_path: Path, ext: str, keep: float) -> None:
    data = encoded(noise(), ext)
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "damaged or incomplete" in assert_actionable(exc, path)


@pytest.mark.parametrize("ext", EXTS)
def test_header_only_file_is_damaged_not_foreign(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(encoded(noise(), ext)[:16])
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "damaged or incomplete" in assert_actionable(exc, path)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "not an image file" in assert_actionable(exc, path)


def test_heic_gets_its_own_advice(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0002.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(BadInputError) as exc:
        load_image(path)
    assert "HEIC" in assert_actionable(exc, path)


def test_pillow_limit_is_ours() -> None:
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS == 250_000_000


@pytest.mark.parametrize(
    ("width", "height", "count"),
    [(100_000, 100_000, "10,000,000,000"), (20_000, 15_000, "300,000,000")],  # above 2x and 1x the limit
)
def test_decompression_bomb(tmp_path: Path, width: int, height: int, count: str) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(width, height))
    assert path.stat().st_size < 100
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape either
        with pytest.raises(BadInputError) as exc:
            load_image(path)
    assert time.perf_counter() - start < 1.0
    assert count in assert_actionable(exc, path)


def test_decompression_bomb_with_pillow_check_switched_off(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 15_000))
    with pytest.raises(BadInputError) as exc:
        load_mask(path)
    assert "20000x15000 = 300,000,000 pixels" in assert_actionable(exc, path)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_no_file_handle_left_open(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "lime")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    noise().save(tmp_path / "ok.png")
    (tmp_path / "cut.jpg").write_bytes(encoded(noise(), "jpg")[:300])
    (tmp_path / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    (tmp_path / "text.png").write_text("nope")

    before = len(os.listdir("/proc/self/fd"))
    for name in ("anim.gif", "pages.tif", "ok.png", "cut.jpg", "bomb.png", "text.png"):
        try:
            load_image(tmp_path / name)
            load_mask(tmp_path / name)
        except BadInputError:
            pass
    assert len(os.listdir("/proc/self/fd")) == before


# ---- modes -----------------------------------------------------------------------------------------------
def test_loaded_image_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    noise().save(path)
    loaded = load_image(str(path))
    assert isinstance(loaded, LoadedImage)
    assert loaded.path == path and loaded.format == "PNG" and loaded.original_mode == "RGB"
    assert loaded.image.mode == "RGB" and loaded.size == (64, 48)
    assert loaded.icc_profile is None and loaded.exif is None and loaded.parameters is None
    assert loaded.image.info == {}  # metadata lives in the fields, not on the pixels
    assert np.array_equal(pixels(loaded.image), pixels(noise()))


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535, 257, 128, 129, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "I;16" and loaded.image.mode == "RGB"
    got = pixels(loaded.image)
    assert list(got[0, :, 0]) == [0, 128, 255, 1, 0, 1, 4]  # round(v * 255 / 65535)
    assert np.array_equal(got[..., 0], got[..., 2])


def test_16_bit_big_endian_tiff(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535]], dtype=">u2")
    path = tmp_path / "deep.tif"
    Image.fromarray(values).save(path)  # ">u2" data gives mode "I;16B"
    loaded = load_image(path)
    assert loaded.original_mode == "I;16B"
    assert list(pixels(loaded.image)[0, :, 1]) == [0, 128, 255]


def test_32_bit_integer_tiff(tmp_path: Path) -> None:
    path = tmp_path / "int.tif"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32), "I").save(path)
    assert list(pixels(load_image(path).image)[0, :, 0]) == [0, 128, 255]  # 16-bit range: same rule

    Image.fromarray(np.array([[-1000, 49500, 100000]], dtype=np.int32), "I").save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "I"
    assert list(pixels(loaded.image)[0, :, 0]) == [0, 128, 255]  # wider range: min..max stretched


def test_float_tiff_0_to_1_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    data = np.array([[0.0, 0.5, 1.0, 0.25, np.nan]], dtype=np.float32)
    Image.fromarray(data, "F").save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "F"
    assert list(pixels(loaded.image)[0, :, 0]) == [0, 128, 255, 64, 0]


def test_float_tiff_above_1_is_clipped_to_0_255(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[-5.0, 0.0, 100.4, 254.6, 300.0]], dtype=np.float32), "F").save(path)
    assert list(pixels(load_image(path).image)[0, :, 0]) == [0, 0, 100, 255, 255]


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    path = tmp_path / "pal.png"
    image.save(path, transparency=0)
    loaded = load_image(path)
    assert loaded.original_mode == "P" and loaded.image.mode == "RGBA"
    assert tuple(pixels(loaded.image)[0, 0])[3] == 0
    assert tuple(pixels(loaded.image)[0, 1]) == (200, 10, 20, 255)


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "pal.png"
    noise().convert("P").save(path)
    assert load_image(path).image.mode == "RGB"


def test_transparent_colour_becomes_alpha(tmp_path: Path) -> None:
    path = tmp_path / "trns.png"
    rgb([(10, 20, 30), (40, 50, 60)]).save(path, transparency=(10, 20, 30))
    loaded = load_image(path)
    assert loaded.image.mode == "RGBA"
    assert pixels(loaded.image).tolist() == [[[10, 20, 30, 0], [40, 50, 60, 255]]]
    assert pixels(load_mask(path)).tolist() == [[0, 255]]  # a mask uses that alpha too


def test_la_becomes_rgba(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[90, 0], [90, 128], [200, 255]]], dtype=np.uint8), "LA").save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "LA" and loaded.image.mode == "RGBA"
    assert pixels(loaded.image).tolist() == [[[90, 90, 90, 0], [90, 90, 90, 128], [200, 200, 200, 255]]]


def test_opaque_alpha_is_not_transparency(tmp_path: Path) -> None:
    path = tmp_path / "opaque.png"
    noise().convert("RGBA").save(path)
    assert load_image(path).image.mode == "RGB"
    Image.new("LA", (3, 3), (50, 255)).save(path)
    assert load_image(path).image.mode == "RGB"


@pytest.mark.parametrize(("mode", "value", "expected"), [("L", 77, 77), ("1", 1, 255), ("1", 0, 0)])
def test_grey_and_bilevel_become_rgb(tmp_path: Path, mode: str, value: int, expected: int) -> None:
    path = tmp_path / "grey.png"
    Image.new(mode, (2, 2), value).save(path)
    loaded = load_image(path)
    assert loaded.image.mode == "RGB"
    assert pixels(loaded.image).tolist() == [[[expected] * 3] * 2] * 2


def test_cmyk_jpeg_without_profile_uses_plain_conversion(tmp_path: Path) -> None:
    image = Image.new("CMYK", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 0))
    path = tmp_path / "print.jpg"
    image.save(path, quality=100)
    loaded = load_image(path)
    assert loaded.original_mode == "CMYK" and loaded.image.mode == "RGB" and loaded.icc_profile is None
    assert np.abs(pixels(loaded.image).astype(int) - [[[255, 255, 255], [0, 255, 255]]]).max() <= 2


def test_cmyk_jpeg_with_profile_is_colour_managed(tmp_path: Path) -> None:
    image = Image.new("CMYK", (3, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 0))
    image.putpixel((2, 0), (0, 0, 0, 255))
    path = tmp_path / "print.jpg"
    image.save(path, quality=100, icc_profile=swapped_cmyk_icc())
    loaded = load_image(path)
    assert loaded.image.mode == "RGB" and loaded.icc_profile is None  # converted to sRGB
    expected = [[[255, 255, 255], [255, 0, 255], [0, 0, 0]]]  # the profile's cyan is magenta
    assert np.abs(pixels(loaded.image).astype(int) - expected).max() <= 3


def test_cmyk_with_a_profile_that_does_not_fit_falls_back(tmp_path: Path) -> None:
    image = Image.new("CMYK", (1, 1), (255, 0, 0, 0))
    path = tmp_path / "print.tif"
    image.save(path, icc_profile=srgb_icc())  # an RGB profile on CMYK pixels: unusable
    loaded = load_image(path)
    assert loaded.icc_profile is None
    assert np.abs(pixels(loaded.image).astype(int) - [[[0, 255, 255]]]).max() <= 2


def test_grey_profile_is_applied_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (1, 1), 128).save(path, icc_profile=linear_grey_icc())
    loaded = load_image(path)
    assert loaded.icc_profile is None
    value = pixels(loaded.image)[0, 0]
    assert 180 <= value[0] <= 195 and value[0] == value[1] == value[2]  # linear 0.5 in sRGB


def test_rgb_profile_on_grey_image_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (1, 1), 128).save(path, icc_profile=srgb_icc())
    loaded = load_image(path)
    assert loaded.icc_profile is None and pixels(loaded.image).tolist() == [[[128, 128, 128]]]


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(path)
    assert loaded.format == "GIF" and loaded.image.mode == "RGB"
    assert tuple(pixels(loaded.image)[0, 0]) == (255, 0, 0)


def test_animated_webp_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    loaded = load_image(path)
    assert tuple(pixels(loaded.image)[0, 0]) == (255, 0, 0)


def test_multipage_tiff_gives_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (5, 3), (10, 20, 30)), Image.new("RGB", (7, 9), (200, 100, 0))]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    loaded = load_image(path)
    assert loaded.size == (5, 3) and tuple(pixels(loaded.image)[1, 1]) == (10, 20, 30)


def test_mpo_gives_main_picture(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), (250, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 250))]
    path = tmp_path / "phone.jpg"
    frames[0].save(path, format="MPO", save_all=True, append_images=frames[1:], quality=100)
    loaded = load_image(path)
    assert loaded.format == "MPO"
    assert np.abs(pixels(loaded.image)[8, 8].astype(int) - [250, 0, 0]).max() <= 3


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif", "bmp", "gif"])
def test_one_by_one_is_an_image(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"dot.{ext}"
    Image.new("RGB", (1, 1), (255, 255, 255)).save(path)
    loaded = load_image(path)
    assert loaded.size == (1, 1) and loaded.image.mode == "RGB"


# ---- EXIF orientation ------------------------------------------------------------------------------------
# How to display stored pixels S, from the EXIF definition of where row 0 / column 0 go.
EXPECTED_UPRIGHT = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],  # row 0 top, column 0 right
    3: lambda s: s[::-1, ::-1],  # row 0 bottom, column 0 right
    4: lambda s: s[::-1, :],  # row 0 bottom, column 0 left
    5: lambda s: s.transpose(1, 0, 2),  # row 0 left, column 0 top
    6: lambda s: s.transpose(1, 0, 2)[:, ::-1],  # row 0 right, column 0 top (rotate 90 CW)
    7: lambda s: s.transpose(1, 0, 2)[::-1, ::-1],  # row 0 right, column 0 bottom
    8: lambda s: s.transpose(1, 0, 2)[::-1, :],  # row 0 left, column 0 bottom (rotate 90 CCW)
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(tmp_path: Path, orientation: int) -> None:
    stored = asymmetric()
    path = tmp_path / "oriented.png"
    Image.fromarray(stored, "RGB").save(path, exif=exif_bytes(orientation))
    loaded = load_image(path)
    assert np.array_equal(pixels(loaded.image), EXPECTED_UPRIGHT[orientation](stored))
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"


@pytest.mark.parametrize("ext", ["jpg", "tif", "webp"])
def test_orientation_in_camera_formats(tmp_path: Path, ext: str) -> None:
    stored = np.kron(asymmetric(), np.ones((16, 16, 1), dtype=np.uint8))  # 16 px blocks survive JPEG
    path = tmp_path / f"camera.{ext}"
    Image.fromarray(stored, "RGB").save(path, exif=exif_bytes(6), quality=100)
    loaded = load_image(path)
    expected = EXPECTED_UPRIGHT[6](stored)
    assert loaded.size == (32, 48)
    assert np.abs(pixels(loaded.image)[8::16, 8::16].astype(int) - expected[8::16, 8::16]).max() <= 8


def test_orientation_reset_keeps_other_exif_bytes(tmp_path: Path) -> None:
    raw = exif_bytes(8)
    path = tmp_path / "o.jpg"
    noise().save(path, exif=raw)
    loaded = load_image(path)
    assert loaded.exif is not None and len(loaded.exif) == len(raw)
    assert sum(a != b for a, b in zip(loaded.exif, raw)) == 1  # patched in place: only the value byte


def test_mask_orientation_is_applied_before_the_size_check(tmp_path: Path) -> None:
    stored = np.zeros((4, 6), dtype=np.uint8)  # 6 wide, 4 tall as stored
    stored[0, 0] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(stored, "L").save(path, exif=exif_bytes(6))
    mask = load_mask(path, size=(4, 6))  # upright: 4 wide, 6 tall
    assert mask.size == (4, 6) and pixels(mask)[0, 3] == 255  # stored top-left -> top-right


# ---- masks -----------------------------------------------------------------------------------------------
def test_mask_l_keeps_soft_values(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(np.array([[0, 37, 128, 255]], dtype=np.uint8), "L").save(path)
    mask = load_mask(path, size=(4, 1))
    assert mask.mode == "L" and pixels(mask).tolist() == [[0, 37, 128, 255]]


def test_mask_bilevel(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    image.save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 255]]


def test_mask_la_uses_alpha(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(np.array([[[255, 0], [0, 200], [90, 255]]], dtype=np.uint8), "LA").save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 200, 255]]


def test_mask_rgb_uses_luminance(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    rgb([(0, 0, 0), (255, 255, 255), (255, 0, 0), (128, 128, 128)]).save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 255, 76, 128]]  # ITU-R 601-2 luma


def test_mask_rgba_uses_alpha(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    data = np.array([[[255, 255, 255, 0], [0, 0, 0, 255], [10, 20, 30, 100]]], dtype=np.uint8)
    Image.fromarray(data, "RGBA").save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 255, 100]]


def test_mask_rgba_with_opaque_alpha_uses_luminance(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    data = np.array([[[255, 255, 255, 255], [0, 0, 0, 255], [128, 128, 128, 255]]], dtype=np.uint8)
    Image.fromarray(data, "RGBA").save(path)
    assert pixels(load_mask(path)).tolist() == [[255, 0, 128]]


def test_mask_palette(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image.putpixel((1, 0), 1)
    path = tmp_path / "mask.png"
    image.save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 255]]
    image.save(path, transparency=0)  # with a transparent colour: its alpha is the mask
    assert pixels(load_mask(path)).tolist() == [[0, 255]]


def test_mask_16_bit_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path)
    assert pixels(load_mask(path)).tolist() == [[0, 128, 255]]


def test_mask_of_wrong_size_names_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.new("L", (500, 300)).save(path)
    with pytest.raises(BadInputError) as exc:
        load_mask(path, size=(640, 480))
    msg = assert_actionable(exc, path)
    assert "is 500x300 but the image is 640x480; use a mask of the same size as the image." in msg


def test_mask_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    path.write_text("not a mask")
    with pytest.raises(BadInputError) as exc:
        load_mask(path)
    assert "not a mask file" in assert_actionable(exc, path)
    with pytest.raises(BadInputError) as exc:
        load_mask(tmp_path / "missing.png")
    assert_actionable(exc, tmp_path / "missing.png")


# ---- saving ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "PNG", "JPG"])
def test_save_each_format(tmp_path: Path, ext: str) -> None:
    x, y = np.meshgrid(np.arange(64), np.arange(48))
    image = Image.fromarray(np.dstack([x * 4, y * 5, x + y]).astype(np.uint8), "RGB")  # smooth: fair to JPEG
    path = tmp_path / f"out.{ext}"
    assert save_image(image, path) == path
    loaded = load_image(path)
    assert loaded.size == (64, 48) and loaded.format == SAVE_FORMATS[f".{ext.lower()}"]
    tolerance = 0 if ext.lower() in ("png", "tif", "tiff", "bmp") else 8
    assert np.abs(pixels(loaded.image).astype(int) - pixels(image)).max() <= tolerance


def test_save_unknown_extension_lists_supported(tmp_path: Path) -> None:
    for name in ("out.gif", "out"):
        path = tmp_path / name
        with pytest.raises(BadInputError) as exc:
            save_image(noise(), path)
        assert ".png, .jpg, .jpeg, .webp, .tif, .tiff, .bmp" in assert_actionable(exc, path)
        assert not path.exists()


def test_save_bad_quality() -> None:
    with pytest.raises(BadInputError, match="use a whole number from 1 to 100"):
        save_image(noise(), "x.jpg", quality=0)


def test_save_quality_is_used(tmp_path: Path) -> None:
    save_image(noise(), tmp_path / "low.jpg", quality=30)
    save_image(noise(), tmp_path / "high.jpg", quality=95)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size


def test_save_too_large_for_webp(tmp_path: Path) -> None:
    path = tmp_path / "pano.webp"
    with pytest.raises(BadInputError) as exc:
        save_image(Image.new("RGB", (16_384, 1)), path)
    assert "16383" in assert_actionable(exc, path)


def test_png_parameters_chunk(tmp_path: Path) -> None:
    text = "a cat on a bench\nNegative prompt: blurry\nSteps: 30, Sampler: Euler, CFG scale: 7.5, Seed: 1"
    path = save_image(noise(), tmp_path / "out.png", parameters=text)
    with Image.open(path) as reopened:
        assert reopened.info["parameters"] == text
    assert b"tEXtparameters\x00" in path.read_bytes()  # Latin-1 text: a plain tEXt chunk, as A1111
    assert load_image(path).parameters == text


def test_png_parameters_unicode_uses_itxt(tmp_path: Path) -> None:
    text = "猫 on a bench, «soft light» 🐈\nSteps: 30, Sampler: Euler, CFG scale: 7.5, Seed: 1"
    path = save_image(noise(), tmp_path / "out.png", parameters=text)
    with Image.open(path) as reopened:
        assert reopened.info["parameters"] == text
    assert b"iTXtparameters\x00" in path.read_bytes()


@pytest.mark.parametrize("ext", ["jpg", "webp", "tif"])
@pytest.mark.parametrize("prompt", ["a cat, on a bench", "ein Kätzchen «x» 猫 🐈"])
def test_parameters_round_trip_in_other_formats(tmp_path: Path, ext: str, prompt: str) -> None:
    text = f"{prompt}\nSteps: 30, Sampler: Euler, CFG scale: 7.5, Seed: 1"
    path = save_image(noise(), tmp_path / f"out.{ext}", parameters=text)
    assert load_image(path).parameters == text


def test_jpeg_parameters_in_user_comment_and_comment(tmp_path: Path) -> None:
    text = "a cat\nSteps: 30, Sampler: Euler, CFG scale: 7.5, Seed: 1"
    path = save_image(noise(), tmp_path / "out.jpg", parameters=text, exif=exif_bytes(None))
    with Image.open(path) as reopened:
        assert reopened.info["comment"] == text.encode()
        exif = reopened.getexif()
        assert exif.get_ifd(0x8769)[0x9286] == b"ASCII\x00\x00\x00" + text.encode()
        assert exif[0x010F] == "TestCam"  # the camera EXIF is kept next to the comment


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_reads_a1111_unicode_user_comment(tmp_path: Path, encoding: str) -> None:
    text = "ein Kätzchen\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 5"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode(encoding)
    path = tmp_path / "a1111.jpg"
    noise().save(path, exif=exif.tobytes())
    assert load_image(path).parameters == text


def test_camera_comments_are_not_parameters(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "OLYMPUS DIGITAL CAMERA"
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + b" " * 20
    path = tmp_path / "camera.jpg"
    noise().save(path, exif=exif.tobytes(), comment=b"LEAD Technologies Inc. V1.01")
    assert load_image(path).parameters is None


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_icc_profile_is_carried_through(tmp_path: Path, ext: str) -> None:
    icc = srgb_icc()
    source = tmp_path / "camera.jpg"
    noise().save(source, icc_profile=icc, quality=95)
    loaded = load_image(source)
    assert loaded.icc_profile == icc
    out = save_image(loaded.image, tmp_path / f"out.{ext}", icc_profile=loaded.icc_profile)
    with Image.open(out) as reopened:
        assert reopened.info.get("icc_profile") == icc
    assert load_image(out).icc_profile == icc


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_stale_metadata_on_the_image_is_not_written(tmp_path: Path, ext: str) -> None:
    image = noise()
    image.info.update(icc_profile=srgb_icc(), comment=b"old comment", exif=exif_bytes(3))
    out = save_image(image, tmp_path / f"out.{ext}")
    with Image.open(out) as reopened:
        assert "icc_profile" not in reopened.info and "comment" not in reopened.info
        assert 0x0112 not in reopened.getexif()


def test_mismatched_icc_profile_is_left_out(tmp_path: Path) -> None:
    out = save_image(Image.new("L", (4, 4), 9), tmp_path / "grey.png", icc_profile=srgb_icc())
    with Image.open(out) as reopened:
        assert "icc_profile" not in reopened.info


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_exif_is_carried_through_upright(tmp_path: Path, ext: str) -> None:
    out = save_image(noise(), tmp_path / f"out.{ext}", exif=exif_bytes(6))
    with Image.open(out) as reopened:
        exif = reopened.getexif()
        assert exif[0x010F] == "TestCam" and exif.get(0x0112) == 1
    assert load_image(out).size == (64, 48)  # not rotated again


@pytest.mark.parametrize("ext", ["jpg", "bmp"])
def test_rgba_flattened_over_white(tmp_path: Path, ext: str) -> None:
    data = np.array([[[0, 0, 0, 0], [255, 0, 0, 255], [255, 0, 0, 128]]], dtype=np.uint8)
    image = Image.fromarray(np.repeat(np.repeat(data, 8, axis=0), 8, axis=1), "RGBA")
    out = save_image(image, tmp_path / f"out.{ext}", quality=100)
    loaded = load_image(out)
    assert loaded.image.mode == "RGB"
    got = pixels(loaded.image)[4, 4::8].astype(int)
    assert np.abs(got - [[255, 255, 255], [255, 0, 0], [255, 127, 127]]).max() <= 4


@pytest.mark.parametrize("ext", ["png", "webp", "tif"])
def test_rgba_keeps_alpha(tmp_path: Path, ext: str) -> None:
    data = np.zeros((8, 8, 4), dtype=np.uint8)
    data[..., 0] = 200
    data[:, 4:, 3] = 255
    out = save_image(Image.fromarray(data, "RGBA"), tmp_path / f"out.{ext}")
    loaded = load_image(out)
    assert loaded.image.mode == "RGBA"
    assert np.array_equal(pixels(loaded.image)[..., 3], data[..., 3])


def test_grey_jpeg_stays_grey(tmp_path: Path) -> None:
    out = save_image(Image.new("L", (8, 8), 100), tmp_path / "grey.jpg")
    with Image.open(out) as reopened:
        assert reopened.mode == "L"


# ---- atomic saving ---------------------------------------------------------------------------------------
@pytest.fixture
def existing(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "result.png"
    rgb([(1, 2, 3)]).save(path)
    return path, path.read_bytes()


def _broken_encoder(error: BaseException):
    def save(image: Image.Image, fp, filename) -> None:
        fp.write(b"\x89PNG\r\n\x1a\n half an image")  # some bytes reach the temporary file first
        raise error

    return save


@pytest.mark.parametrize(
    ("error", "raised"),
    [(OSError("simulated encoder failure"), BadInputError), (RuntimeError("bug"), RuntimeError)],
)
def test_failed_write_leaves_previous_file_untouched(
    existing: tuple[Path, bytes], monkeypatch, error: BaseException, raised: type
) -> None:
    path, before = existing
    monkeypatch.setitem(Image.SAVE, "PNG", _broken_encoder(error))
    with pytest.raises(raised) as exc:
        save_image(noise(), path, parameters="x")
    if raised is BadInputError:
        assert "nothing was overwritten" in assert_actionable(exc, path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


def test_failed_fsync_disk_full(existing: tuple[Path, bytes], monkeypatch) -> None:
    path, before = existing

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imageio.os, "fsync", full)
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert "disk is full" in assert_actionable(exc, path)
    assert path.read_bytes() == before and os.listdir(path.parent) == [path.name]


def test_failed_replace(existing: tuple[Path, bytes], monkeypatch) -> None:
    path, before = existing

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(imageio.os, "replace", refuse)
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert_actionable(exc, path)
    assert path.read_bytes() == before and os.listdir(path.parent) == [path.name]


def test_successful_overwrite_replaces_and_keeps_permissions(existing: tuple[Path, bytes]) -> None:
    path, before = existing
    path.chmod(0o640)
    save_image(noise(), path)
    assert path.read_bytes() != before
    assert load_image(path).size == (64, 48)
    assert (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(path.parent) == [path.name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_file_gets_default_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = save_image(noise(), tmp_path / "new.png")
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_save_into_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "no such folder" / "out.png"
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert "does not exist" in assert_actionable(exc, path)


def test_save_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    path = tmp_path / "file.txt" / "out.png"
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert_actionable(exc, path)


def test_save_onto_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.mkdir()
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert "is a folder" in assert_actionable(exc, path)


def test_save_into_unwritable_folder_simulated(tmp_path: Path, monkeypatch) -> None:
    real_open = open

    def deny(file, mode="r", *args, **kwargs):
        if "x" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", deny, raising=False)
    path = tmp_path / "out.png"
    with pytest.raises(BadInputError) as exc:
        save_image(noise(), path)
    assert "is not writable" in assert_actionable(exc, path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_save_into_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        path = folder / "out.png"
        with pytest.raises(BadInputError) as exc:
            save_image(noise(), path)
        assert "is not writable" in assert_actionable(exc, path)
    finally:
        folder.chmod(0o700)
