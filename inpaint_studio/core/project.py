"""Project files (.inpaint): one zip holding a versioned JSON manifest and lossless PNG blobs.

Layout (format version 1)::

    mimetype            "application/x-inpaint-studio", stored first and uncompressed (like OpenRaster)
    manifest.json       format, version, app version, document (size, layers, mask, metadata),
                        history (the whole graph with every parameter), generate (last panel parameters)
    layers/<id>.png     one RGBA PNG per layer, full document size
    mask.png            the mask (8-bit greyscale, 255 = repaint)
    tiles/<key>.png     history snapshot tiles, shared by content key (see core/history/fileformat.py)
    icc.icc, exif.bin   the source image's colour profile and EXIF, when it had them

A project is data, never code: no pickle, and reading refuses absolute paths, "..", symlinks, duplicate
names, oversized or over-compressed entries (zip bombs) and manifests that name entries the zip lacks, each
with one clear sentence. Writing is atomic: a temporary file in the same folder, fsync, then os.replace, so
a crash at any moment leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import cv2
import numpy as np
from PIL import Image

from inpaint_studio import __version__
from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history.graph import History

MIMETYPE = "application/x-inpaint-studio"
FORMAT_NAME = "inpaint-studio-project"
FORMAT_VERSION = 1
SUFFIX = ".inpaint"

# Limits for reading untrusted files; generous for real projects (a 50 MP photo with dozens of layers).
MAX_ENTRIES = 200_000
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_ENTRY_BYTES = 2 * 2**30
MAX_TOTAL_BYTES = 32 * 2**30
MAX_RATIO = 200  # PNG data never compresses further by more than this; a zip bomb does
MAX_PIXELS = 250_000_000
LAYER_KINDS = ("base", "result", "paint")
Blob = bytes | memoryview


@dataclass
class Project:
    """What a project file holds, as live objects."""

    document: Document
    history: History | None = None  # None for a project saved without history
    generate: dict[str, Any] = field(default_factory=dict)  # the Generate panel's last parameters
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, JSON-able (e.g. UI state)
    path: Path | None = None
    saved_at: float | None = None
    notes: list[str] = field(default_factory=list)  # what could not be kept on opening (one sentence each)


class ProjectError(BadInputError):
    """A project file that cannot be opened; the message names the file and says what to do."""


# ---- writing ----------------------------------------------------------------------------------------------


# Measured on the 6000x4000 benchmark project (2 cores): Pillow's encoder at zlib level 1 spent most of its
# time choosing a filter for every row among all five (an RGBA photo layer: 2.4-3.9 s; 52 MB). libpng through
# OpenCV with one fixed filter (Sub: each pixel minus its left neighbour, the usual winner on photos) writes
# the same PNG format 2-3x faster at the same size (+0-2 %), and releases the GIL, so the layers and tiles
# encode on every core. Level 1: nearly the size of level 6 on photos, several times faster to write.
_PNG_OPTIONS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_SUB,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_DEFAULT,
]


def _png_bytes(array: np.ndarray) -> memoryview:
    """An 8-bit RGBA or greyscale array as PNG bytes (the project's blobs; any PNG reader opens them)."""
    if array.ndim == 3 and array.shape[2] == 4:
        source = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)  # OpenCV's channel order; the file says RGBA
    elif array.ndim == 2:
        source = np.ascontiguousarray(array)
    else:
        raise ValueError(f"a project blob is RGBA or greyscale, not {array.shape}")
    ok, encoded = cv2.imencode(".png", source, _PNG_OPTIONS)
    if not ok:
        raise BadInputError("The project could not be encoded (the image library failed); try saving again.")
    return encoded.reshape(-1).data


def build_manifest(project: Project, tile_keys: list[str]) -> dict[str, Any]:
    doc = project.document
    metadata = {k: v for k, v in doc.metadata.items() if k in ("path", "parameters") and v is not None}
    if "path" in metadata:
        metadata["path"] = str(metadata["path"])
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "app_version": __version__,
        "saved_at": time.time(),
        "document": {
            "width": doc.width,
            "height": doc.height,
            "active_layer_id": doc.active_layer_id,
            "metadata": metadata,
            "icc_profile": "icc.icc" if doc.metadata.get("icc_profile") else None,
            "exif": "exif.bin" if doc.metadata.get("exif") else None,
            "mask": "mask.png",
            "layers": [
                {
                    "id": layer.id,
                    "name": layer.name,
                    "kind": layer.kind,
                    "visible": layer.visible,
                    "opacity": layer.opacity,
                    "metadata": layer.metadata,
                    "file": f"layers/{layer.id}.png",
                }
                for layer in doc.layers
            ],
        },
        "history": project.history.to_dict() if project.history is not None else None,
        "tiles": {key: f"tiles/{key}.png" for key in tile_keys},
        "generate": project.generate,
        "extra": project.extra,
    }


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write `project` to `path` atomically; returns the path. Raises BadInputError if it cannot be written."""
    target = Path(path)
    if target.suffix.lower() != SUFFIX:
        raise BadInputError(f"A project file must end in {SUFFIX}; choose a name like '{target.stem}{SUFFIX}'.")
    tiles = project.history.tile_blobs() if project.history is not None else {}
    manifest = build_manifest(project, sorted(tiles))
    doc = project.document
    entries: list[tuple[str, Callable[[], Blob]]] = [
        ("manifest.json", lambda: json.dumps(manifest, indent=1, default=_json_default).encode("utf-8")),
        ("mask.png", lambda: _png_bytes(doc.mask)),
    ]
    for layer in doc.layers:
        entries.append((f"layers/{layer.id}.png", lambda layer=layer: _png_bytes(layer.pixels)))
    for key, tile in tiles.items():
        entries.append((f"tiles/{key}.png", lambda tile=tile: _png_bytes(np.ascontiguousarray(tile))))
    if doc.metadata.get("icc_profile"):
        entries.append(("icc.icc", lambda: bytes(doc.metadata["icc_profile"])))
    if doc.metadata.get("exif"):
        entries.append(("exif.bin", lambda: bytes(doc.metadata["exif"])))
    _atomic_zip(target, entries)
    project.path, project.saved_at = target, manifest["saved_at"]
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (bytes, bytearray)):
        return None  # binary metadata lives in its own entry
    # Anything else (a Path, an enum, a tuple-like) is kept as its text: a save must never fail on metadata.
    return str(value)


def _atomic_zip(target: Path, entries: list[tuple[str, Callable[[], Blob]]]) -> None:
    def write(raw: BinaryIO) -> None:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(zipfile.ZipInfo("mimetype", date_time=(1980, 1, 1, 0, 0, 0)), MIMETYPE)
            # The PNG encoder releases the GIL: encode on every core, write in order.
            with ThreadPoolExecutor(max_workers=_workers()) as pool:
                for (name, _), data in zip(entries, pool.map(lambda entry: entry[1](), entries)):
                    # PNGs are already compressed; deflating them again only costs time. JSON compresses well.
                    method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
                    archive.writestr(name, data, compress_type=method)

    atomic_write(target, write)


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


# ---- reading ----------------------------------------------------------------------------------------------


class SafeZip:
    """A zip opened for untrusted reading: every entry checked before anything is decoded."""

    def __init__(self, path: Path, noun: str = "project", suffix: str = SUFFIX) -> None:
        self.path, self.noun = path, noun
        try:
            self.archive = zipfile.ZipFile(path)
        except FileNotFoundError as exc:
            raise ProjectError(f"The {noun} {path} does not exist; check the path.") from exc
        except IsADirectoryError as exc:
            raise ProjectError(f"{path} is a folder, not a {noun} file; choose a {suffix} file.") from exc
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ProjectError(
                f"{path} is not a valid {noun} or is damaged; open a {suffix} file, or a backup."
            ) from exc
        self.infos: dict[str, zipfile.ZipInfo] = {}
        self._check_entries()

    def fail(self, why: str) -> ProjectError:
        """The error to raise for a damaged archive: one sentence naming the file and why."""
        return ProjectError(f"The {self.noun} {self.path.name} is unsafe or damaged ({why}); it was not opened.")

    def _check_entries(self) -> None:
        infos = self.archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise self.fail(f"{len(infos)} entries")
        total = 0
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in parts or not parts:
                raise self.fail(f"the entry '{name}' points outside the {self.noun}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise self.fail(f"the entry '{name}' is a symbolic link")
            if name in self.infos:
                raise self.fail(f"the entry '{name}' appears twice")
            if info.file_size > MAX_ENTRY_BYTES:
                raise self.fail(f"the entry '{name}' is {info.file_size} bytes")
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 2**20:
                raise self.fail(f"the entry '{name}' is compressed {info.file_size // info.compress_size}:1")
            total += info.file_size
            self.infos[name] = info
        if total > MAX_TOTAL_BYTES:
            raise self.fail(f"{total} bytes uncompressed")

    def read(self, name: str, limit: int = MAX_ENTRY_BYTES) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise self.fail(f"the manifest names '{name}', which the file does not contain")
        if info.file_size > limit:
            raise self.fail(f"the entry '{name}' is {info.file_size} bytes")
        try:
            with self.archive.open(info) as fh:
                data = fh.read(limit + 1)  # a lying header cannot make us read more than the limit
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:  # CRC mismatch, truncation...
            raise self.fail(f"the entry '{name}' is damaged: {exc}") from exc
        if len(data) > limit:
            raise self.fail(f"the entry '{name}' is larger than it claims")
        return data

    def read_png(self, name: str, shape: tuple[int, ...], mode: str) -> np.ndarray:
        data = self.read(name)
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                if image.format != "PNG":
                    raise self.fail(f"'{name}' is not a PNG image")
                if image.width * image.height > MAX_PIXELS:
                    raise self.fail(f"'{name}' has {image.width * image.height} pixels")
                array = _fast_decode(data, image, mode)
                if array is None:
                    array = np.array(image.convert(mode), dtype=np.uint8)
        except ProjectError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise self.fail(f"the image '{name}' cannot be decoded") from exc
        if array.shape != shape:
            raise self.fail(f"'{name}' is {array.shape[1]}x{array.shape[0]}, expected {shape[1]}x{shape[0]}")
        return array

    def close(self) -> None:
        self.archive.close()


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""version -> function upgrading a manifest of that version to version + 1 (none yet: version 1 is the first)."""


def migrate(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    version = manifest.get("version")
    if manifest.get("format") != FORMAT_NAME or not isinstance(version, int) or version < 1:
        raise ProjectError(f"{path.name} is not an Inpaint Studio project (its manifest is not ours).")
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"{path.name} was saved by a newer Inpaint Studio (project format {version}, this one reads up to "
            f"{FORMAT_VERSION}); update Inpaint Studio to open it."
        )
    while manifest["version"] < FORMAT_VERSION:
        manifest = MIGRATIONS[manifest["version"]](manifest)
    return manifest


def _require(condition: bool, safe: SafeZip, why: str) -> None:
    if not condition:
        raise safe.fail(why)


def load_project(path: str | os.PathLike[str], *, with_history: bool = True) -> Project:
    """Open a project file; every problem becomes one ProjectError sentence naming the file."""
    source = Path(path)
    safe = SafeZip(source)
    # PNG decoding releases the GIL: the layers, the mask and the history's tiles decode on every core,
    # while this thread checks the manifest.
    pool = ThreadPoolExecutor(max_workers=_workers())
    try:
        try:
            manifest = json.loads(safe.read("manifest.json", MAX_MANIFEST_BYTES))
        except (ValueError, RecursionError) as exc:  # RecursionError: thousands of nested brackets
            raise safe.fail("its manifest is not valid JSON") from exc
        _require(isinstance(manifest, dict), safe, "its manifest is not an object")
        manifest = migrate(manifest, source)
        doc_data = manifest.get("document")
        _require(isinstance(doc_data, dict), safe, "the manifest has no document")
        width, height = doc_data.get("width"), doc_data.get("height")
        _require(
            isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0,
            safe,
            "the document size is invalid",
        )
        _require(width * height <= MAX_PIXELS, safe, f"the document is {width}x{height}")
        layers_data = doc_data.get("layers")
        _require(isinstance(layers_data, list) and layers_data, safe, "the document has no layers")
        layers: list[tuple[dict[str, Any], Future[np.ndarray]]] = []
        seen_ids: set[str] = set()
        for item in layers_data:
            _require(isinstance(item, dict), safe, "a layer entry is not an object")
            layer_id, file = item.get("id"), item.get("file")
            _require(isinstance(layer_id, str) and layer_id not in seen_ids, safe, "layer ids are missing or repeated")
            _require(isinstance(file, str), safe, f"layer {layer_id} has no image")
            _require(item.get("kind") in LAYER_KINDS, safe, f"layer {layer_id} has an unknown kind")
            seen_ids.add(layer_id)
            opacity = item.get("opacity", 1.0)
            _require(
                isinstance(opacity, (int, float)) and not isinstance(opacity, bool) and 0 <= opacity <= 1,
                safe,
                f"layer {layer_id} has an invalid opacity",
            )
            metadata = item.get("metadata", {})
            _require(isinstance(metadata, dict), safe, f"layer {layer_id} has invalid metadata")
            name, visible = item.get("name", "Layer"), item.get("visible", True)
            _require(isinstance(name, str) and isinstance(visible, bool), safe, f"layer {layer_id} is invalid")
            fields = {"name": name, "kind": item["kind"], "visible": visible, "opacity": float(opacity)}
            fields.update(metadata=metadata, id=layer_id)
            layers.append((fields, pool.submit(safe.read_png, file, (height, width, 4), "RGBA")))
        mask_name = doc_data.get("mask", "mask.png")
        _require(isinstance(mask_name, str), safe, "the mask entry is invalid")
        mask_pixels = pool.submit(safe.read_png, mask_name, (height, width), "L")
        history_data = manifest.get("history")
        tiles_decoded: dict[str, Future[np.ndarray]] = {}
        if with_history and history_data is not None:
            tile_names = manifest.get("tiles") or {}
            _require(
                isinstance(tile_names, dict) and all(isinstance(v, str) for v in tile_names.values()),
                safe,
                "the tile table is invalid",
            )
            tiles_decoded = {key: pool.submit(_read_tile, safe, name) for key, name in tile_names.items()}
        document = Document(
            width,
            height,
            [Layer(pixels=pixels.result(), **fields) for fields, pixels in layers],
            mask_pixels.result(),
        )
        active = doc_data.get("active_layer_id")
        if isinstance(active, str) and active in seen_ids:
            document.set_active_layer(active)
        metadata = doc_data.get("metadata") or {}
        _require(isinstance(metadata, dict), safe, "the document metadata is invalid")
        # Only text is kept: these travel into exports (file names, the PNG "parameters" chunk).
        document.metadata.update(
            {k: v for k, v in metadata.items() if k in ("path", "parameters") and isinstance(v, str)}
        )
        for key, entry_key in (("icc_profile", "icc_profile"), ("exif", "exif")):
            entry = doc_data.get(entry_key)
            if entry:
                _require(isinstance(entry, str), safe, f"the {key} entry is invalid")
                document.metadata[key] = safe.read(entry, 64 * 2**20)

        notes: list[str] = []
        history = None
        if with_history and history_data is not None:
            tiles = {key: decoded.result() for key, decoded in tiles_decoded.items()}
            try:
                history = History.from_dict(history_data, tiles)
            except ValueError as exc:
                # The layers and the mask are the work; a damaged history must not lose them.
                notes.append(
                    f"The history in {source.name} is damaged ({exc}), so it opened without its history; "
                    "the layers and the mask are complete."
                )
        generate = manifest.get("generate") or {}
        extra = manifest.get("extra") or {}
        _require(isinstance(generate, dict) and isinstance(extra, dict), safe, "the saved settings are invalid")
        saved_at = manifest.get("saved_at")
        return Project(
            document=document,
            history=history,
            generate=generate,
            extra=extra,
            path=source,
            saved_at=float(saved_at) if isinstance(saved_at, (int, float)) and not isinstance(saved_at, bool) else None,
            notes=notes,
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after a failure: what has not started never will
        safe.close()


def _read_tile(safe: SafeZip, name: str) -> np.ndarray:
    data = safe.read(name, 64 * 2**20)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            # Tiles are 8-bit grey (mask) or RGBA (layers, inputs), at most TILE pixels a side.
            if image.mode not in ("L", "RGBA") or max(image.size) > 4096:
                raise safe.fail(f"'{name}' is not a history tile")
            array = _fast_decode(data, image, image.mode)
            if array is None:
                array = np.array(image, dtype=np.uint8)
            array.flags.writeable = False  # a history tile never changes (and the history need not copy it)
            return array
    except ProjectError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise safe.fail(f"the tile '{name}' cannot be decoded") from exc


def _fast_decode(data: bytes, image: Image.Image, mode: str) -> np.ndarray | None:
    """Decode an 8-bit RGBA or greyscale PNG (what projects hold) straight into a new array; None when the
    file is anything else, or OpenCV cannot decode it (Pillow then decodes it, or says why it cannot).

    Pillow has already read the header (format, size, mode). Its own decode goes through an image buffer,
    a bytes copy and the array: three fresh 96 MB allocations per 6000x4000 layer, each paid in page faults.
    OpenCV's decoder (libpng, releasing the GIL) writes into the array once.
    """
    if image.mode != mode or mode not in ("RGBA", "L") or image.info.get("transparency") is not None:
        return None
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    channels = 4 if mode == "RGBA" else 1
    expected = (image.height, image.width, 4) if channels == 4 else (image.height, image.width)
    if array is None or array.dtype != np.uint8 or array.shape != expected:
        return None  # 16-bit, palette or damaged: Pillow's path decides
    if channels == 4:
        cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA, dst=array)
    return array


def read_manifest(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Only the (migrated) manifest: for listing recovery files and replaying without loading pixels."""
    safe = SafeZip(Path(path))
    try:
        manifest = json.loads(safe.read("manifest.json", MAX_MANIFEST_BYTES))
        if not isinstance(manifest, dict):
            raise safe.fail("its manifest is not an object")
        return migrate(manifest, Path(path))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ProjectError):
            raise
        raise safe.fail("its manifest is not valid JSON") from exc
    finally:
        safe.close()
