"""OpenRaster (.ora) export and import: the layered format Krita, GIMP and MyPaint read and write.

Spec: https://www.openraster.org (version 0.0.6). A zip whose first entry is an uncompressed "mimetype"
("image/openraster"), a stack.xml describing the layer tree (first child = top of the stack), one PNG per
layer with an x/y offset, mergedimage.png (the flattened image) and Thumbnails/thumbnail.png (<= 256 px).

Export: every layer (hidden ones keep visibility="hidden"), then the inpainting mask as a hidden top layer
(white on transparent) tagged with our own namespaced attribute, so other editors show it as a normal layer
and Inpaint Studio reads it back as the mask.
Import rules: nested stacks are flattened in paint order; a stack's opacity multiplies into its children
and a hidden stack hides them; layers are placed at their x/y offset and clipped to the canvas; composite
operations other than svg:src-over are imported as normal layers (the only blend mode the app has), which
is reported in `OraImport.notes`.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.project import MAX_PIXELS, SafeZip

ORA_MIMETYPE = "image/openraster"
NS = "urn:inpaint-studio:ora"  # our extension attributes; other readers ignore unknown namespaces
KIND = f"{{{NS}}}kind"
MASK_LAYER_NAME = "Inpaint mask"
MAX_STACK_XML = 8 * 2**20
MAX_LAYERS = 2000


@dataclass
class OraImport:
    document: Document
    notes: list[str] = field(default_factory=list)  # what could not be represented exactly


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def export_ora(document: Document, path: str | os.PathLike[str]) -> Path:
    """Write `document` as OpenRaster, atomically."""
    target = Path(path)
    if target.suffix.lower() != ".ora":
        raise BadInputError(f"An OpenRaster file must end in .ora; choose a name like '{target.stem}.ora'.")
    ET.register_namespace("is", NS)
    image = ET.Element("image", w=str(document.width), h=str(document.height), version="0.0.6")
    stack = ET.SubElement(image, "stack")
    blobs: list[tuple[str, bytes]] = []
    if document.mask.any():
        alpha = document.mask
        rgba = np.dstack([np.full_like(alpha, 255)] * 3 + [alpha])
        blobs.append(("data/mask.png", _png(rgba)))
        ET.SubElement(
            stack,
            "layer",
            {"name": MASK_LAYER_NAME, "src": "data/mask.png", "x": "0", "y": "0", "opacity": "1.0"}
            | {"visibility": "hidden", "composite-op": "svg:src-over", KIND: "mask"},
        )
    for index, layer in enumerate(reversed(document.layers)):  # ORA lists the top layer first
        src = f"data/layer{len(document.layers) - 1 - index}.png"
        blobs.append((src, _png(layer.pixels)))
        ET.SubElement(
            stack,
            "layer",
            {
                "name": layer.name,
                "src": src,
                "x": "0",
                "y": "0",
                "opacity": f"{layer.opacity:.4f}",
                "visibility": "visible" if layer.visible else "hidden",
                "composite-op": "svg:src-over",
                KIND: layer.kind,
            },
        )
    merged = document.composite()
    thumb = Image.fromarray(merged)
    thumb.thumbnail((256, 256))
    xml = ET.tostring(image, encoding="utf-8", xml_declaration=True)

    def write(raw: BinaryIO) -> None:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(zipfile.ZipInfo("mimetype", date_time=(1980, 1, 1, 0, 0, 0)), ORA_MIMETYPE)
            archive.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
            for name, data in blobs:
                archive.writestr(name, data)
            archive.writestr("mergedimage.png", _png(merged))
            archive.writestr("Thumbnails/thumbnail.png", _png(np.asarray(thumb)))

    atomic_write(target, write)
    return target


def _float(value: str | None, default: float, safe: SafeZip) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise safe.fail(f"the value '{value[:20]}' is not a number") from exc


def _int(value: str | None, safe: SafeZip) -> int:
    try:
        return int(float(value)) if value is not None else 0
    except (ValueError, OverflowError) as exc:  # "abc", "nan", "inf"
        raise safe.fail(f"the offset '{value[:20]}' is not a number") from exc


def import_ora(path: str | os.PathLike[str]) -> OraImport:
    """Read an OpenRaster file written by any application (see the module docstring for the rules)."""
    source = Path(path)
    safe = SafeZip(source, noun="OpenRaster file", suffix=".ora")
    try:
        if "mimetype" in safe.infos and safe.read("mimetype", 100).strip() != ORA_MIMETYPE.encode():
            raise safe.fail("its mimetype is not image/openraster")
        try:
            root = ET.fromstring(safe.read("stack.xml", MAX_STACK_XML))
        except ET.ParseError as exc:
            raise safe.fail("its stack.xml is not valid XML") from exc
        if root.tag != "image":
            raise safe.fail("its stack.xml has no <image> element")
        width, height = _int(root.get("w"), safe), _int(root.get("h"), safe)
        if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
            raise safe.fail(f"the canvas size {width}x{height} is invalid")
        top_stack = root.find("stack")
        if top_stack is None:
            raise safe.fail("its stack.xml has no layer stack")
        notes: list[str] = []
        flat: list[tuple[ET.Element, float, bool]] = []  # top-first, with inherited opacity/visibility

        def walk(stack: ET.Element, opacity: float, visible: bool, depth: int) -> None:
            if depth > 64:
                raise safe.fail("its layer groups are nested too deeply")
            for child in stack:
                child_opacity = opacity * _float(child.get("opacity"), 1.0, safe)
                child_visible = visible and child.get("visibility", "visible") != "hidden"
                if child.tag == "stack":
                    walk(child, child_opacity, child_visible, depth + 1)
                elif child.tag == "layer":
                    flat.append((child, child_opacity, child_visible))
                    if len(flat) > MAX_LAYERS:
                        raise safe.fail(f"it has more than {MAX_LAYERS} layers")

        walk(top_stack, 1.0, True, 0)
        if any(stack.tag == "stack" for stack in top_stack):
            notes.append("Layer groups were flattened into single layers (group opacity and visibility applied).")
        layers: list[Layer] = []
        mask = np.zeros((height, width), np.uint8)
        for element, opacity, visible in reversed(flat):  # bottom first, like Document.layers
            src = element.get("src")
            if not src:
                raise safe.fail("a layer has no image")
            pixels = _place(safe, src, width, height, _int(element.get("x"), safe), _int(element.get("y"), safe))
            op = element.get("composite-op", "svg:src-over")
            name = element.get("name") or Path(src).stem
            if element.get(KIND) == "mask":
                # White where painted, scaled by coverage: our own export gives the exact mask back.
                brightness = pixels[..., :3].max(axis=-1).astype(np.uint16)
                mask = (brightness * pixels[..., 3] // 255).astype(np.uint8)
                continue
            if op != "svg:src-over":
                notes.append(f"Layer '{name}' used blend mode {op}; it was imported as a normal layer.")
            kind = element.get(KIND)
            layers.append(
                Layer(
                    name=name,
                    pixels=pixels,
                    kind=kind if kind in ("base", "result", "paint") else ("base" if not layers else "paint"),
                    visible=visible,
                    opacity=max(0.0, min(1.0, opacity)),
                )
            )
        if not layers:
            raise safe.fail("it has no image layers")
        return OraImport(Document(width, height, layers, mask), notes)
    finally:
        safe.close()


def _place(safe: SafeZip, src: str, width: int, height: int, x: int, y: int) -> np.ndarray:
    """The layer PNG placed at (x, y) on a transparent canvas of the document's size, clipped."""
    data = safe.read(src)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.format != "PNG":
                raise safe.fail(f"the layer '{src}' is not a PNG image")
            if image.width * image.height > MAX_PIXELS:
                raise safe.fail(f"the layer '{src}' has too many pixels")
            rgba = np.asarray(image.convert("RGBA"))
    except BadInputError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise safe.fail(f"the layer '{src}' cannot be decoded") from exc
    canvas = np.zeros((height, width, 4), np.uint8)
    h, w = rgba.shape[:2]
    left, top = max(0, x), max(0, y)
    right, bottom = min(width, x + w), min(height, y + h)
    if right > left and bottom > top:
        canvas[top:bottom, left:right] = rgba[top - y : bottom - y, left - x : right - x]
    return canvas
