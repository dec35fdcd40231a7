"""Document snapshots: the document at one moment, captured cheaply by sharing unchanged tiles.

A snapshot holds every layer (attributes + pixels) and the mask, with pixels as a `TiledArray`: a grid of
read-only 256x256 tiles. Consecutive snapshots share every tile that did not change, so

* the first snapshot of a layer costs one copy of that layer (all-zero tiles share one zero tile, so an
  empty paint layer or an empty mask costs almost nothing);
* a paint stroke or mask edit costs only the tiles its dirty rect touches (a 40 px dab: 1-4 tiles, i.e.
  256-1024 KiB for RGBA, 64-256 KiB for the mask), whatever the photo size;
* a result layer costs one copy of its non-empty tiles (the same as the layer itself);
* layer operations that keep pixels (rename, hide, opacity, move, delete) cost nothing.

Copies are needed because the document edits layer pixels in place (brush strokes, `write_region`), so the
live arrays cannot be shared. `capture` decides what to re-read: a layer whose array is the same object as
the one the previous snapshot came from, and that the edit's hints do not name, reuses that snapshot's
tiles; a hinted rect re-reads only its tiles; anything else is compared tile by tile against the previous
snapshot (safe for edits nobody described). `adopt_sources` marks a restored snapshot as the source of the
arrays it was restored into, so the capture after an undo can skip them again.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inpaint_studio.core.document import MASK, Document, Layer, Rect, composite_layers
from inpaint_studio.core.history.tiles import TiledArray, unique_nbytes

THUMBNAIL_SIDE = 96


@dataclass(frozen=True)
class LayerSnapshot:
    id: str
    name: str
    kind: str
    visible: bool
    opacity: float
    metadata: dict[str, Any]
    pixels: TiledArray

    def to_layer(self) -> Layer:
        """A live Layer with the same id and a writable copy of the pixels."""
        return Layer(
            name=self.name,
            pixels=self.pixels.to_array(),
            kind=self.kind,  # type: ignore[arg-type]
            visible=self.visible,
            opacity=self.opacity,
            metadata=dict(self.metadata),
            id=self.id,
        )


@dataclass(frozen=True)
class DocumentSnapshot:
    """The document at one moment: layers bottom -> top, the active layer and the mask."""

    width: int
    height: int
    layers: tuple[LayerSnapshot, ...]
    active_layer_id: str | None
    mask: TiledArray
    # Which live arrays the pixels were read from (target -> weakref): lets the next capture skip them.
    sources: Mapping[str, weakref.ref] = field(default_factory=dict, compare=False, repr=False)

    def layer(self, layer_id: str) -> LayerSnapshot | None:
        return next((layer for layer in self.layers if layer.id == layer_id), None)

    def to_layers(self) -> list[Layer]:
        return [layer.to_layer() for layer in self.layers]

    def to_document(self) -> Document:
        """A new, independent Document holding this state."""
        return Document(self.width, self.height, self.to_layers(), self.mask.to_array())

    def composite(self) -> np.ndarray:
        """The visible layers blended (HxWx4 straight RGBA), as the document showed them."""
        return composite_layers(self.to_layers(), (0, 0, self.width, self.height))

    def thumbnail(self, side: int = THUMBNAIL_SIDE) -> np.ndarray:
        """A small RGBA composite (nearest-neighbour sampling: cheap at any document size)."""
        step = max(1, -(-max(self.width, self.height) // side))
        layers = [
            Layer(name=la.name, pixels=la.pixels.sampled(step), kind=la.kind, visible=la.visible, opacity=la.opacity)  # type: ignore[arg-type]
            for la in self.layers
        ]
        if not layers:
            return np.zeros((1, 1, 4), np.uint8)
        h, w = layers[0].pixels.shape[:2]
        return composite_layers(layers, (0, 0, w, h))

    @property
    def nbytes(self) -> int:
        """Memory of this snapshot's distinct tiles (tiles shared with other snapshots included)."""
        return unique_nbytes([la.pixels for la in self.layers] + [self.mask])


Hints = Mapping[str, Rect | None]
"""What an edit changed: target (layer id or `MASK`) -> dirty rect, or None for "the whole target"."""


def capture(
    document: Document, previous: DocumentSnapshot | None = None, hints: Hints | None = None
) -> DocumentSnapshot:
    """Snapshot `document`, sharing what did not change since `previous`.

    `previous` must be the snapshot of the state the edit was applied to. `hints` names what the edit
    changed; None means "unknown", and then every layer is compared with `previous` tile by tile.
    """

    def reuse_ok(target: str) -> bool:
        if previous is None or hints is None:
            return False
        ref = previous.sources.get(target)
        return ref is not None and ref() is live[target]

    live: dict[str, np.ndarray] = {layer.id: layer.pixels for layer in document.layers}
    live[MASK] = document.mask

    def tiled(target: str, old: TiledArray | None) -> TiledArray:
        array = live[target]
        if old is not None and reuse_ok(target):
            assert hints is not None
            if target not in hints:
                return old
            rect = hints[target]
            if rect is not None:
                return TiledArray.capture(array, old, document.clip_rect(rect))
        return TiledArray.capture(array, old)

    layers = []
    for layer in document.layers:
        old_layer = previous.layer(layer.id) if previous is not None else None
        layers.append(
            LayerSnapshot(
                id=layer.id,
                name=layer.name,
                kind=layer.kind,
                visible=layer.visible,
                opacity=layer.opacity,
                metadata=dict(layer.metadata),
                pixels=tiled(layer.id, old_layer.pixels if old_layer else None),
            )
        )
    mask = tiled(MASK, previous.mask if previous is not None else None)
    return DocumentSnapshot(
        width=document.width,
        height=document.height,
        layers=tuple(layers),
        active_layer_id=document.active_layer_id,
        mask=mask,
        sources={target: weakref.ref(array) for target, array in live.items()},
    )


def adopt_sources(snapshot: DocumentSnapshot, document: Document) -> DocumentSnapshot:
    """The same snapshot, marked as the source of `document`'s arrays (after restoring it into them)."""
    live = {layer.id: layer.pixels for layer in document.layers}
    live[MASK] = document.mask
    return DocumentSnapshot(
        width=snapshot.width,
        height=snapshot.height,
        layers=snapshot.layers,
        active_layer_id=snapshot.active_layer_id,
        mask=snapshot.mask,
        sources={target: weakref.ref(array) for target, array in live.items()},
    )
