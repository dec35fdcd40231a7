"""One history entry: what an edit was (kind, title, time, parameters) and the state it left.

Kept apart from the graph (`graph.History`) so that the file format can build entries without importing
the graph, which delegates its saving and loading to `fileformat`: no import cycle between the two.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

from inpaint_studio.core.history.snapshots import DocumentSnapshot
from inpaint_studio.core.history.tiles import TiledArray

Kind = Literal["generate", "classic", "layer", "mask", "paint", "open", "upscale"]
KINDS: tuple[str, ...] = ("generate", "classic", "layer", "mask", "paint", "open", "upscale")
GENERATION_KINDS: tuple[str, ...] = ("generate", "classic")  # entries that hold a GenerationRecord
KIND_LABELS = {
    "generate": "Generation",
    "classic": "Classical fill",
    "layer": "Layer",
    "mask": "Mask",
    "paint": "Paint stroke",
    "open": "Opened",
    "upscale": "Upscale",
}


@dataclass
class HistoryEntry:
    id: int
    parent_id: int | None
    kind: str
    title: str
    time: float  # seconds since the epoch, when the edit was made
    duration_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    thumbnail: np.ndarray | None = None  # small RGBA uint8
    snapshot: DocumentSnapshot | None = None
    derived_from: tuple[int, ...] = ()  # generation entries whose result pixels this edit started from
    # What a generation was given ("image": the RGBA composite, "mask"), so it can be re-run exactly. Tiles
    # equal to the snapshot's base layer / mask are shared, so this costs only where results lay on top.
    inputs: dict[str, TiledArray] = field(default_factory=dict)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def render_thumbnail(self) -> np.ndarray | None:
        """The thumbnail, rendered from the snapshot on first use (keeps recording an edit cheap)."""
        if self.thumbnail is None and self.snapshot is not None:
            self.thumbnail = self.snapshot.thumbnail()
        return self.thumbnail

    def thumbnail_png(self) -> bytes | None:
        if self.thumbnail is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(self.thumbnail).save(buffer, "PNG")
        return buffer.getvalue()
