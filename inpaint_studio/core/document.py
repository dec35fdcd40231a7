"""The layered document: layers of RGBA pixels, one inpainting mask, compositing and change events.

Pure numpy (no Qt). The UI subscribes to the document's events and repaints only what changed; undo
commands use `read_region` / `write_region` to store and restore the bounding box of an edit.

Conventions
-----------
* A rect is ``(left, top, right, bottom)`` in document pixels, right/bottom exclusive (like PIL's box
  and ``InpaintResult.region``). `clip_rect` clamps one to the document; an empty rect has no area.
* Layer pixels are *straight* (not premultiplied) RGBA ``uint8`` arrays of shape ``(height, width, 4)``.
* The mask is ``uint8`` ``(height, width)``: 255 = repaint, 0 = keep, values between are a soft edge.
* ``layers`` is ordered bottom -> top. The first layer of kind ``"base"`` is "the original".
* The document object lives as long as its window: opening another image calls `reset_from`, which
  swaps the contents in place and fires ``reset``, so subscribers connect once.

Events (see `Event`): ``layers_changed()`` - the layer list, a name, visibility, opacity or the active
layer changed; ``pixels_changed(rect)`` - the composite may differ inside rect (also fired for visibility,
opacity and order changes, with the full rect); ``mask_changed(rect)``; ``resized((dx, dy))`` - the canvas
changed size within the same work (an expansion, an upscale, or their undo): every layer array and the mask
were replaced, and what was at (x, y) is now at (x + dx, y + dy) ((0, 0) when the content was rescaled);
``reset()`` - another work: size and everything else changed (history starts again).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

from inpaint_studio.core.canvas import Margins, check_expansion, expand_array

Rect = tuple[int, int, int, int]
LayerKind = Literal["base", "result", "paint"]
MASK = "mask"
"""The `read_region` / `write_region` target naming the document's mask."""

_STRIP_ROWS = 256  # composite large rects in strips so the float scratch buffers stay small
_LITTLE_ENDIAN = sys.byteorder == "little"


def new_layer_id() -> str:
    return uuid.uuid4().hex


def rect_union(a: Rect | None, b: Rect | None) -> Rect | None:
    """Smallest rect containing both (None and empty rects are ignored)."""
    if a is None or rect_is_empty(a):
        return None if b is None or rect_is_empty(b) else b
    if b is None or rect_is_empty(b):
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def rect_is_empty(rect: Rect) -> bool:
    return rect[2] <= rect[0] or rect[3] <= rect[1]


def rect_area(rect: Rect) -> int:
    return 0 if rect_is_empty(rect) else (rect[2] - rect[0]) * (rect[3] - rect[1])


def bbox_of_nonzero(array: np.ndarray) -> Rect | None:
    """Bounding rect of the non-zero elements of a 2-D array (None when all zero)."""
    rows = np.flatnonzero(array.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(array.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def bbox_of_difference(old: np.ndarray, new: np.ndarray) -> Rect | None:
    """Bounding rect of the pixels that differ between two same-shaped arrays (2-D or HxWxC)."""
    diff = old != new
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    return bbox_of_nonzero(diff)


class Event:
    """A minimal synchronous signal: ``connect(callback)``, ``disconnect(callback)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):  # a callback may disconnect itself
            callback(*args)

    def __len__(self) -> int:
        return len(self._callbacks)


@dataclass(frozen=True, eq=False)
class CanvasState:
    """What a canvas-size change swaps: the size, each layer's pixel array (by layer id) and the mask.

    Holds the arrays by reference: an undo command keeps the state from before an expansion without copying.
    """

    width: int
    height: int
    pixels: dict[str, np.ndarray]
    mask: np.ndarray


@dataclass(eq=False)
class Layer:
    """One layer. ``metadata`` is free-form (a result layer keeps e.g. ``{"history_id": ...}``)."""

    name: str
    pixels: np.ndarray  # (H, W, 4) uint8 straight RGBA
    kind: LayerKind = "paint"
    visible: bool = True
    opacity: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_layer_id)

    def __post_init__(self) -> None:
        if self.pixels.dtype != np.uint8 or self.pixels.ndim != 3 or self.pixels.shape[2] != 4:
            raise ValueError(f"layer pixels must be HxWx4 uint8, got {self.pixels.shape} {self.pixels.dtype}")
        self.opacity = float(min(1.0, max(0.0, self.opacity)))

    @classmethod
    def empty(cls, width: int, height: int, name: str = "Paint", kind: LayerKind = "paint") -> Layer:
        """A fully transparent layer."""
        return cls(name=name, pixels=np.zeros((height, width, 4), np.uint8), kind=kind)

    @classmethod
    def from_image(cls, image: Image.Image, name: str, kind: LayerKind = "result") -> Layer:
        """A layer holding a PIL image (converted to RGBA)."""
        return cls(name=name, pixels=pil_to_rgba(image), kind=kind)

    def copy(self, name: str | None = None) -> Layer:
        """A deep copy with a new id."""
        return Layer(
            name=self.name if name is None else name,
            pixels=self.pixels.copy(),
            kind=self.kind,
            visible=self.visible,
            opacity=self.opacity,
            metadata=dict(self.metadata),
        )

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def pil_to_rgba(image: Image.Image) -> np.ndarray:
    """A writable, C-contiguous HxWx4 uint8 copy of a PIL image."""
    if image.mode != "RGBA":
        image = image.convert("RGBA")
    return np.array(image, dtype=np.uint8, copy=True)


class Document:
    """A stack of same-sized layers plus one mask; see the module docstring for conventions."""

    def __init__(self, width: int = 0, height: int = 0, layers: Iterable[Layer] = (), mask: np.ndarray | None = None):
        self.width = int(width)
        self.height = int(height)
        self.layers: list[Layer] = []
        self.mask = np.zeros((self.height, self.width), np.uint8) if mask is None else mask
        self._check_mask(self.mask)
        self.active_layer_id: str | None = None
        # Where the image came from, for export: "path", "icc_profile", "exif", "parameters" (PNG text).
        self.metadata: dict[str, Any] = {}
        self.layers_changed = Event()
        self.pixels_changed = Event()
        self.mask_changed = Event()
        self.resized = Event()
        self.reset = Event()
        for layer in layers:
            self._check_layer(layer)
            self.layers.append(layer)
        if self.layers:
            self.active_layer_id = self.layers[-1].id

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_image(cls, image: Image.Image, name: str = "Background") -> Document:
        """A document with one ``"base"`` layer holding the image and an empty mask."""
        layer = Layer(name=name, pixels=pil_to_rgba(image), kind="base")
        return cls(layer.width, layer.height, [layer])

    def reset_from(self, other: Document) -> None:
        """Take over another document's size, layers and mask (in place), then fire ``reset``."""
        self.width, self.height = other.width, other.height
        self.layers = list(other.layers)
        self.mask = other.mask
        self.active_layer_id = other.active_layer_id
        self.metadata = dict(other.metadata)
        self.reset.emit()

    @property
    def is_empty(self) -> bool:
        """True when no image is open (no layers or zero size)."""
        return not self.layers or self.width == 0 or self.height == 0

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def full_rect(self) -> Rect:
        return (0, 0, self.width, self.height)

    def clip_rect(self, rect: Rect) -> Rect:
        """The rect clamped to the document (may be empty)."""
        left, top, right, bottom = (int(v) for v in rect)
        return (
            max(0, min(left, self.width)),
            max(0, min(top, self.height)),
            max(0, min(right, self.width)),
            max(0, min(bottom, self.height)),
        )

    # ----------------------------------------------------------------- lookup
    def layer(self, layer_id: str) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"no layer with id {layer_id!r}")

    def index_of(self, layer_id: str) -> int:
        for index, layer in enumerate(self.layers):
            if layer.id == layer_id:
                return index
        raise KeyError(f"no layer with id {layer_id!r}")

    @property
    def active_layer(self) -> Layer | None:
        if self.active_layer_id is None:
            return None
        try:
            return self.layer(self.active_layer_id)
        except KeyError:
            return None

    def set_active_layer(self, layer_id: str | None) -> None:
        if layer_id is not None:
            self.layer(layer_id)  # raises on an unknown id
        if layer_id != self.active_layer_id:
            self.active_layer_id = layer_id
            self.layers_changed.emit()

    @property
    def base_layer(self) -> Layer | None:
        """The original image: the first ``"base"`` layer, else the bottom layer."""
        for layer in self.layers:
            if layer.kind == "base":
                return layer
        return self.layers[0] if self.layers else None

    def new_layer(self, name: str = "Paint", kind: LayerKind = "paint") -> Layer:
        """A transparent layer of the document's size (not yet added)."""
        return Layer.empty(self.width, self.height, name=name, kind=kind)

    def unique_name(self, stem: str) -> str:
        """``stem`` or ``stem 2``, ``stem 3`` ... so layer names stay distinguishable."""
        names = {layer.name for layer in self.layers}
        if stem not in names:
            return stem
        n = 2
        while f"{stem} {n}" in names:
            n += 1
        return f"{stem} {n}"

    # ----------------------------------------------------------------- layer operations
    def add_layer(self, layer: Layer, index: int | None = None, activate: bool = True) -> None:
        """Insert a layer at index (None = top) and make it active."""
        self._check_layer(layer)
        if any(existing.id == layer.id for existing in self.layers):
            raise ValueError(f"layer {layer.id} is already in the document")
        index = len(self.layers) if index is None else max(0, min(index, len(self.layers)))
        self.layers.insert(index, layer)
        if activate or self.active_layer_id is None:
            self.active_layer_id = layer.id
        self._structure_changed(layer)

    def remove_layer(self, layer_id: str) -> tuple[Layer, int]:
        """Remove a layer; returns it and its former index (what undo needs)."""
        index = self.index_of(layer_id)
        layer = self.layers.pop(index)
        if self.active_layer_id == layer_id:
            self.active_layer_id = self.layers[min(index, len(self.layers) - 1)].id if self.layers else None
        self._structure_changed(layer)
        return layer, index

    def move_layer(self, layer_id: str, new_index: int) -> int:
        """Move a layer to new_index (clamped); returns its old index."""
        old_index = self.index_of(layer_id)
        new_index = max(0, min(new_index, len(self.layers) - 1))
        if new_index != old_index:
            layer = self.layers.pop(old_index)
            self.layers.insert(new_index, layer)
            self._structure_changed(layer)
        return old_index

    def duplicate_layer(self, layer_id: str) -> Layer:
        """Insert a copy right above the layer, make it active and return it."""
        source = self.layer(layer_id)
        copy = source.copy(name=self.unique_name(f"{source.name} copy"))
        if copy.kind == "base":
            copy.kind = "paint"  # only one original
        self.add_layer(copy, self.index_of(layer_id) + 1)
        return copy

    def rename_layer(self, layer_id: str, name: str) -> None:
        layer = self.layer(layer_id)
        if layer.name != name:
            layer.name = name
            self.layers_changed.emit()

    def set_layer_visible(self, layer_id: str, visible: bool) -> None:
        layer = self.layer(layer_id)
        if layer.visible != visible:
            layer.visible = bool(visible)
            self.layers_changed.emit()
            self.pixels_changed.emit(self.full_rect)

    def set_layer_opacity(self, layer_id: str, opacity: float) -> None:
        layer = self.layer(layer_id)
        opacity = float(min(1.0, max(0.0, opacity)))
        if layer.opacity != opacity:
            layer.opacity = opacity
            self.layers_changed.emit()
            self.pixels_changed.emit(self.full_rect)

    def merge_down(self, layer_id: str) -> Layer:
        """Blend a layer onto the one below it (which keeps its id, name and kind); returns the lower layer.

        The lower layer's visibility and opacity are applied to the merged pixels, so the composite does not
        change (unless the lower layer is hidden, in which case the result shows only the upper layer's part).
        """
        index = self.index_of(layer_id)
        if index == 0:
            raise ValueError("the bottom layer has nothing below it to merge into")
        upper, lower = self.layers[index], self.layers[index - 1]
        merged = composite_layers([lower, upper], self.full_rect, premultiplied=False)
        lower.pixels = merged
        lower.visible, lower.opacity = True, 1.0
        self.layers.pop(index)
        self.active_layer_id = lower.id
        self._structure_changed(lower)
        return lower

    def flatten_all(self, name: str | None = None) -> Layer:
        """Replace every layer by one ``"base"`` layer holding the composite; returns it."""
        base = self.base_layer
        flat = Layer(
            name=name or (base.name if base else "Background"),
            pixels=self.composite(),
            kind="base",
        )
        self.layers = [flat]
        self.active_layer_id = flat.id
        self._structure_changed(flat)
        return flat

    def set_layers(self, layers: list[Layer], active_layer_id: str | None) -> None:
        """Replace the layer list wholesale (used by undo of flatten / merge)."""
        for layer in layers:
            self._check_layer(layer)
        self.layers = list(layers)
        self.active_layer_id = active_layer_id if any(la.id == active_layer_id for la in layers) else None
        if self.active_layer_id is None and self.layers:
            self.active_layer_id = self.layers[-1].id
        self._structure_changed(None)

    # ----------------------------------------------------------------- pixel access (undo primitives)
    def target_array(self, target: str) -> np.ndarray:
        """The live array of a layer id or of `MASK` (mutating it requires a change event)."""
        return self.mask if target == MASK else self.layer(target).pixels

    def read_region(self, target: str, rect: Rect) -> np.ndarray:
        """A copy of the pixels of a layer id or `MASK` inside rect (clipped to the document)."""
        left, top, right, bottom = self.clip_rect(rect)
        return self.target_array(target)[top:bottom, left:right].copy()

    def write_region(self, target: str, rect: Rect, pixels: np.ndarray) -> None:
        """Write pixels (shaped like `read_region` of the same rect) and fire the matching change event."""
        left, top, right, bottom = self.clip_rect(rect)
        array = self.target_array(target)
        region = array[top:bottom, left:right]
        if pixels.shape != region.shape:
            raise ValueError(f"region {rect} expects shape {region.shape}, got {pixels.shape}")
        region[...] = pixels
        self.notify_changed(target, (left, top, right, bottom))

    def notify_changed(self, target: str, rect: Rect) -> None:
        """Fire the event for pixels changed in place (tools call this after drawing into a target)."""
        rect = self.clip_rect(rect)
        if rect_is_empty(rect):
            return
        if target == MASK:
            self.mask_changed.emit(rect)
        else:
            layer = self.layer(target)
            if layer.visible and layer.opacity > 0:
                self.pixels_changed.emit(rect)
            else:
                self.pixels_changed.emit((0, 0, 0, 0))  # thumbnails still refresh; nothing to repaint

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the whole mask's values (copied into the existing array)."""
        self._check_mask(mask)
        self.mask[...] = mask
        self.mask_changed.emit(self.full_rect)

    # ----------------------------------------------------------------- canvas size
    def canvas_state(self) -> CanvasState:
        """The size and the live arrays (not copies): what `set_canvas_state` puts back."""
        return CanvasState(self.width, self.height, {layer.id: layer.pixels for layer in self.layers}, self.mask)

    def expanded_state(self, margins: Margins, mask_value: int = 255) -> CanvasState:
        """The canvas with `margins` added: every layer extended with transparent pixels, the mask with
        `mask_value` (255: the new area is to be filled). Original pixels are copied exactly, not resampled.
        Raises BadInputError (one sentence) when the new canvas exceeds the app's pixel limit."""
        width, height = check_expansion(self.width, self.height, margins)
        return CanvasState(
            width,
            height,
            {layer.id: expand_array(layer.pixels, margins) for layer in self.layers},
            expand_array(self.mask, margins, mask_value),
        )

    def expand_canvas(self, margins: Margins, mask_value: int = 255) -> CanvasState:
        """Add canvas around the image (see `expanded_state`); returns the state before, for undo."""
        before = self.canvas_state()
        self.set_canvas_state(self.expanded_state(margins, mask_value), margins.offset)
        return before

    def set_canvas_state(self, state: CanvasState, offset: tuple[int, int] = (0, 0)) -> None:
        """Swap in a canvas state (every current layer must be in it), then fire ``resized(offset)``."""
        missing = [layer.name for layer in self.layers if layer.id not in state.pixels]
        if missing:
            raise ValueError(f"the canvas state has no pixels for the layer(s) {', '.join(missing)}")
        for layer_id, pixels in state.pixels.items():
            if pixels.shape[:2] != (state.height, state.width):
                raise ValueError(f"layer {layer_id} is {pixels.shape[1]}x{pixels.shape[0]}, not the state's size")
        if state.mask.shape != (state.height, state.width) or state.mask.dtype != np.uint8:
            raise ValueError("the canvas state's mask does not fit its size")
        self.width, self.height = state.width, state.height
        for layer in self.layers:
            layer.pixels = state.pixels[layer.id]
        self.mask = state.mask
        self._resized(offset)

    def restore(
        self, width: int, height: int, layers: list[Layer], active_layer_id: str | None, mask: np.ndarray
    ) -> None:
        """Show another state of this work (a history snapshot, or back from one), whatever its size.

        Same size: the layer list is replaced and the mask's values copied in (``layers_changed``,
        ``pixels_changed``, ``mask_changed``). Another size: everything is swapped and ``resized((0, 0))`` fires.
        """
        if (width, height) == (self.width, self.height):
            self.set_layers(layers, active_layer_id)
            self.set_mask(mask)
            return
        if mask.shape != (height, width) or mask.dtype != np.uint8:
            raise ValueError(f"mask must be {height}x{width} uint8, got {mask.shape} {mask.dtype}")
        for layer in layers:
            if layer.pixels.shape[:2] != (height, width):
                raise ValueError(f"layer {layer.name!r} is {layer.width}x{layer.height}, not {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.layers = list(layers)
        self.active_layer_id = active_layer_id if any(la.id == active_layer_id for la in layers) else None
        if self.active_layer_id is None and self.layers:
            self.active_layer_id = self.layers[-1].id
        self.mask = mask
        self._resized((0, 0))

    # ----------------------------------------------------------------- compositing
    def composite(self, rect: Rect | None = None, premultiplied: bool = False) -> np.ndarray:
        """The visible layers blended with "normal" mode and their opacity, inside rect (default: all).

        Returns ``(h, w, 4)`` uint8, straight RGBA (or premultiplied when asked: what a display cache wants).
        """
        rect = self.full_rect if rect is None else self.clip_rect(rect)
        return composite_layers(self.layers, rect, premultiplied=premultiplied)

    def flattened(self) -> Image.Image:
        """The composite as a PIL RGBA image."""
        return Image.fromarray(self.composite(), "RGBA")

    def flattened_rgb(self, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
        """The composite over an opaque background colour, as a PIL RGB image."""
        rgba = self.composite(premultiplied=True)
        alpha = rgba[..., 3:4].astype(np.uint16)
        bg = np.asarray(background, np.uint16)
        rgb = rgba[..., :3].astype(np.uint16) + (bg * (255 - alpha) + 127) // 255
        return Image.fromarray(np.minimum(rgb, 255).astype(np.uint8), "RGB")

    def has_transparency(self) -> bool:
        """True when some composite pixel is not fully opaque."""
        return bool((self.composite()[..., 3] < 255).any())

    # ----------------------------------------------------------------- internals
    def _resized(self, offset: tuple[int, int]) -> None:
        # `resized` first: views rebuild for the new size before anything reads a rect of it.
        self.resized.emit((int(offset[0]), int(offset[1])))
        self.layers_changed.emit()

    def _structure_changed(self, layer: Layer | None) -> None:
        self.layers_changed.emit()
        # Adding, removing or moving an empty or hidden layer shows nothing new: skip the recomposite
        # (a full one costs about half a second on a 6000x4000 photo).
        if layer is None or (layer.visible and layer.opacity > 0 and _has_alpha(layer.pixels)):
            self.pixels_changed.emit(self.full_rect)

    def _check_layer(self, layer: Layer) -> None:
        if layer.pixels.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"layer {layer.name!r} is {layer.width}x{layer.height}, the document is {self.width}x{self.height}"
            )

    def _check_mask(self, mask: np.ndarray) -> None:
        if mask.dtype != np.uint8 or mask.shape != (self.height, self.width):
            raise ValueError(f"mask must be {self.height}x{self.width} uint8, got {mask.shape} {mask.dtype}")


def composite_layers(layers: list[Layer], rect: Rect, premultiplied: bool = False) -> np.ndarray:
    """Blend layers (bottom -> top) inside rect; see `Document.composite`."""
    left, top, right, bottom = rect
    width, height = max(0, right - left), max(0, bottom - top)
    out = np.zeros((height, width, 4), np.uint8)
    visible = [layer for layer in layers if layer.visible and layer.opacity > 0]
    if not visible or width == 0 or height == 0:
        return out
    for y0 in range(0, height, _STRIP_ROWS):
        y1 = min(height, y0 + _STRIP_ROWS)
        strip = (left, top + y0, right, top + y1)
        out[y0:y1] = _composite_strip(visible, strip, premultiplied)
    return out


def _alpha_words(region: np.ndarray) -> np.ndarray:
    """Each RGBA pixel as one uint32 whose top byte is alpha (little-endian): fast alpha tests."""
    return region.view(np.uint32)[..., 0]


def _is_opaque(region: np.ndarray) -> bool:
    if _LITTLE_ENDIAN:
        return bool((_alpha_words(region) >= 0xFF000000).all())
    return bool((region[..., 3] == 255).all())


def _has_alpha(region: np.ndarray) -> bool:
    if _LITTLE_ENDIAN:
        return bool((_alpha_words(region) > 0x00FFFFFF).any())
    return bool(region[..., 3].any())


def _composite_strip(layers: list[Layer], rect: Rect, premultiplied: bool) -> np.ndarray:
    left, top, right, bottom = rect
    regions = [layer.pixels[top:bottom, left:right] for layer in layers]
    # Start from the topmost fully covering layer: what lies under it is invisible (and an untouched
    # photo with empty paint layers above composites by copying, exactly).
    start, covered = 0, False
    for index in range(len(layers) - 1, -1, -1):
        if layers[index].opacity >= 1.0 and _is_opaque(regions[index]):
            start, covered = index, True
            break
    # Fully transparent regions change nothing (paint layers mostly are).
    contributing = [(la, region) for la, region in zip(layers[start:], regions[start:]) if _has_alpha(region)]
    if covered and len(contributing) == 1:
        return contributing[0][1].copy()  # opaque: straight == premultiplied, no float round trip
    if not contributing:
        return np.zeros((bottom - top, right - left, 4), np.uint8)
    acc_rgb: np.ndarray | None = None
    acc_a: np.ndarray | None = None
    for layer, region in contributing:
        alpha = region[..., 3].astype(np.float32)
        alpha *= np.float32(layer.opacity / 255.0)
        rgb = region[..., :3].astype(np.float32)
        rgb *= alpha[..., None]  # premultiplied source
        if acc_rgb is None or acc_a is None:
            acc_rgb, acc_a = rgb, alpha
        else:
            keep = 1.0 - alpha
            acc_rgb *= keep[..., None]
            acc_rgb += rgb
            acc_a *= keep
            acc_a += alpha
    assert acc_rgb is not None and acc_a is not None
    if not premultiplied:
        with np.errstate(divide="ignore", invalid="ignore"):
            acc_rgb /= acc_a[..., None]
        acc_rgb[acc_a <= 0] = 0.0
    result = np.empty((bottom - top, right - left, 4), np.uint8)
    acc_rgb += 0.5
    np.clip(acc_rgb, 0, 255, out=acc_rgb)
    result[..., :3] = acc_rgb
    acc_a *= 255.0
    acc_a += 0.5
    np.clip(acc_a, 0, 255, out=acc_a)
    result[..., 3] = acc_a
    return result
