"""OpenRaster: our own round trip, and a file laid out the way other editors write it (from the spec)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.ora import export_ora, import_ora
from inpaint_studio.core.project import ProjectError


def document() -> Document:
    rng = np.random.default_rng(3)
    base = Layer("Background", rng.integers(0, 256, (40, 60, 4), dtype=np.uint8), kind="base")
    base.pixels[..., 3] = 255
    result = Layer("a cat", np.zeros((40, 60, 4), np.uint8), kind="result", opacity=0.5)
    result.pixels[5:20, 10:30] = (10, 200, 30, 255)
    hidden = Layer("Sketch", np.zeros((40, 60, 4), np.uint8), visible=False)
    hidden.pixels[0:5, 0:5] = (255, 0, 0, 128)
    doc = Document(60, 40, [base, result, hidden])
    doc.mask[10:30, 20:50] = 255
    doc.mask[30:35, 20:50] = 100  # soft values survive
    return doc


def test_round_trip_keeps_layers_mask_and_order(tmp_path):
    doc = document()
    path = export_ora(doc, tmp_path / "work.ora")
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        names = set(archive.namelist())
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= names
        merged = np.asarray(Image.open(io.BytesIO(archive.read("mergedimage.png"))))
        assert np.array_equal(merged, doc.composite())
    loaded = import_ora(path)
    assert loaded.notes == []
    new = loaded.document
    assert [la.name for la in new.layers] == ["Background", "a cat", "Sketch"]
    assert [la.kind for la in new.layers] == ["base", "result", "paint"]
    assert [la.visible for la in new.layers] == [True, True, False]
    assert new.layers[1].opacity == pytest.approx(0.5)
    for old, fresh in zip(doc.layers, new.layers):
        assert np.array_equal(old.pixels, fresh.pixels)
    assert np.array_equal(new.mask, doc.mask)


STACK_XML = """<?xml version="1.0" encoding="UTF-8"?>
<image w="32" h="24" version="0.0.5" xres="72" yres="72">
  <stack name="root">
    <layer name="Top note" src="data/note.png" x="20" y="-2" opacity="1.0" composite-op="svg:multiply"/>
    <stack name="Group" opacity="0.5" visibility="visible">
      <layer name="In group" src="data/group.png" x="0" y="0" opacity="0.8"/>
      <stack name="Hidden group" visibility="hidden">
        <layer name="Deep" src="data/deep.png" x="1" y="1"/>
      </stack>
    </stack>
    <layer name="Paper" src="data/paper.png" x="0" y="0" visibility="visible"/>
  </stack>
</image>
"""


def _png(color, size) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_reads_a_file_laid_out_like_other_editors_write_it(tmp_path):
    """Nested stacks, offsets (even negative), a small layer, a blend mode, deflated entries: Krita/GIMP style."""
    path = tmp_path / "krita.ora"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "image/openraster")
        archive.writestr("stack.xml", STACK_XML, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("data/note.png", _png((255, 0, 0, 255), (20, 6)), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("data/group.png", _png((0, 0, 255, 255), (32, 24)))
        archive.writestr("data/deep.png", _png((0, 255, 0, 255), (4, 4)))
        archive.writestr("data/paper.png", _png((250, 250, 240, 255), (32, 24)))
        archive.writestr("mergedimage.png", _png((0, 0, 0, 255), (32, 24)))
    result = import_ora(path)
    doc = result.document
    assert doc.size == (32, 24)
    assert [la.name for la in doc.layers] == ["Paper", "Deep", "In group", "Top note"]
    paper, deep, group, note = doc.layers
    assert paper.kind == "base" and note.kind == "paint"
    assert not deep.visible  # inside a hidden group
    assert group.opacity == pytest.approx(0.4)  # 0.5 group x 0.8 layer
    # The 20x6 note at (20, -2) is clipped to the canvas: columns 20..31, rows 0..3.
    assert (note.pixels[0:4, 20:32, 3] == 255).all()
    assert note.pixels[4:, :, 3].max() == 0 and note.pixels[:, :20, 3].max() == 0
    assert (deep.pixels[1:5, 1:5, 1] == 255).all()
    assert any("multiply" in n for n in result.notes) and any("groups" in n for n in result.notes)
    assert not doc.mask.any()


def test_broken_or_hostile_ora_is_refused(tmp_path):
    path = tmp_path / "bad.ora"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "image/openraster")
        archive.writestr("stack.xml", '<image w="8" h="8"><stack><layer src="data/missing.png"/></stack></image>')
    with pytest.raises(ProjectError, match="does not contain"):
        import_ora(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "image/openraster")
        archive.writestr("stack.xml", "<image w='8' h='8'><stack>")
    with pytest.raises(ProjectError, match="not valid XML"):
        import_ora(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/zip")
    with pytest.raises(ProjectError, match="mimetype"):
        import_ora(path)
    with pytest.raises(BadInputError, match="must end in .ora"):
        export_ora(document(), tmp_path / "x.png")
