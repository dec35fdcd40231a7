"""A frozen picture of what a project save needs, taken on the UI thread without copying pixels.

`ProjectState.take` reads the document's structure and the history's head snapshot (read-only tiles shared
with the history), copies the history graph (entries only) and the panel settings: time proportional to
the number of layers and entries, whatever the image size. `to_project` then builds the `Project` on any
thread (copying pixels out of the tiles, rendering missing thumbnails, applying a size budget), while the
live document and history keep changing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.history.graph import History
from inpaint_studio.core.history.snapshots import DocumentSnapshot, capture
from inpaint_studio.core.history_budget import PrunePlan, prune_history
from inpaint_studio.core.project import Project


def matches(snapshot: DocumentSnapshot, document: Document) -> bool:
    """True when the snapshot describes the document's layers (ids, order, attributes) at its size.

    Pixels are not compared: the history recorder captures every pixel edit when its command is pushed,
    so the head snapshot's tiles are the document's pixels whenever its structure matches.
    """
    if (snapshot.width, snapshot.height) != document.size or len(snapshot.layers) != len(document.layers):
        return False
    return all(
        (s.id, s.name, s.kind, s.visible, s.opacity, s.metadata)
        == (live.id, live.name, live.kind, live.visible, live.opacity, live.metadata)
        for s, live in zip(snapshot.layers, document.layers)
    )


@dataclass(frozen=True)
class ProjectState:
    snapshot: DocumentSnapshot
    active_layer_id: str | None
    metadata: Mapping[str, Any]
    history: History | None
    generate: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(
        cls,
        document: Document,
        history: History | None,
        *,
        generate: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ProjectState:
        """Freeze the document (through the history's head snapshot when it matches) and a copy of history."""
        head = history.head if history is not None else None
        snapshot = head.snapshot if head is not None else None
        if snapshot is None or not matches(snapshot, document):
            # No usable head (an edit nobody recorded): compare tile by tile, sharing what is unchanged.
            snapshot = capture(document, snapshot)
        return cls(
            snapshot=snapshot,
            active_layer_id=document.active_layer_id,
            metadata=dict(document.metadata),
            history=history.copy() if history is not None else None,
            generate=dict(generate or {}),
            extra=dict(extra or {}),
        )

    def to_document(self) -> Document:
        """A new Document with the frozen pixels (a copy: call it off the UI thread for big images)."""
        snap = self.snapshot
        layers: list[Layer] = snap.to_layers()
        document = Document(snap.width, snap.height, layers, snap.mask.to_array())
        if self.active_layer_id in {layer.id for layer in layers}:
            document.set_active_layer(self.active_layer_id)
        document.metadata = dict(self.metadata)
        return document

    def to_project(self, history_budget: int | None = None) -> tuple[Project, PrunePlan | None]:
        """The Project to save, and what the budget pruned from its history copy (None: no budget given)."""
        history = self.history
        plan = None
        if history is not None:
            for entry in history:
                entry.render_thumbnail()  # entries never shown in the panel have none yet
            if history_budget is not None:
                plan = prune_history(history, history_budget)
        project = Project(
            document=self.to_document(),
            history=history,
            generate=dict(self.generate),
            extra=dict(self.extra),
        )
        return project, plan
