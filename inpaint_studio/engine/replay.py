"""Replaying a project's recorded chain of generations headless.

Every generation/classical-fill entry in the history records its full job (with the concrete seed) and
the exact inputs it was given (the composite image and the mask). Replaying an entry re-runs that job on
those inputs; with the same model files and device the result layer is bit-identical to the recorded one.

Branching: `seed` (and/or `model`) changes the first replayed entry. Later entries then see the new
result: their input is rebuilt from their parent state with every re-generated result layer swapped in
(edits made between submitting and applying a job are not in the parent state, so a changed branch is
the faithful re-creation of the document's layers, not of those in-flight edits). A canvas expansion between
two generations extends the swapped layers as it extended the recorded ones (its entry records the margins).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.canvas import expand_array, margins_from_params
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history import GENERATION_KINDS, History, HistoryEntry
from inpaint_studio.core.jobspec import REFERENCE_INPUT, InpaintJob
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.core.results import result_layer_pixels
from inpaint_studio.engine.events import CancelToken, EventSink


@dataclass(frozen=True)
class ReplayStep:
    entry_id: int
    title: str
    job: InpaintJob  # as run (resolved)
    image: Image.Image  # the full result image
    layer_pixels: np.ndarray  # the result layer (changed pixels only)
    identical: bool | None  # vs the recorded result layer; None when it could not be compared
    duration_s: float
    record: GenerationRecord | None = None  # the re-run's own record (model, device, engine facts)


def replay_plan(history: History, start: int | None = None, until: int | None = None) -> list[HistoryEntry]:
    """Generation entries on the branch ending at `until` (default: the head), from `start` on."""
    end = until if until is not None else history.head_id
    if end is None:
        raise BadInputError("The project's history is empty; there is nothing to replay.")
    if end not in history.entries:
        raise BadInputError(f"There is no history entry #{end}; list them with `inpaint-studio replay --list`.")
    path = history.ancestors(end)
    if start is not None:
        if start not in history.entries:
            raise BadInputError(f"There is no history entry #{start}; list them with `inpaint-studio replay --list`.")
        if start not in path:
            raise BadInputError(f"Entry #{start} is not on the branch that ends at #{end}; choose an entry on it.")
        path = path[path.index(start) :]
    steps = [history.entries[i] for i in path if history.entries[i].kind in GENERATION_KINDS]
    if start is not None and history.entries[start].kind not in GENERATION_KINDS:
        raise BadInputError(f"Entry #{start} is not a generation; start from a generation entry.")
    if not steps:
        raise BadInputError("This branch has no generations to replay.")
    return steps


def _added_layers(history: History, entry: HistoryEntry) -> list[str]:
    """Ids of the layers an entry added (its result layer)."""
    if entry.snapshot is None:
        return []
    parent = history.entries.get(entry.parent_id) if entry.parent_id is not None else None
    before = {layer.id for layer in parent.snapshot.layers} if parent and parent.snapshot else set()
    return [layer.id for layer in entry.snapshot.layers if layer.id not in before]


def recorded_job(entry: HistoryEntry) -> InpaintJob:
    """The job that made an entry's result: its own seed, one variant."""
    try:
        return GenerationRecord.from_dict(entry.params).job
    except BadInputError as exc:
        raise BadInputError(f"Entry #{entry.id}: {exc}") from exc


def replay(
    history: History,
    run: Callable[..., Any],
    *,
    start: int | None = None,
    until: int | None = None,
    seed: int | None = None,
    model: str | None = None,
    on_event: EventSink | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[ReplayStep]:
    """Re-run the chain; yields one ReplayStep per generation as it finishes.

    `run` is Engine.run (passed in so callers choose and reuse their engine).
    """
    swapped: dict[str, np.ndarray] = {}  # result layer id -> re-generated pixels
    previous: int | None = None
    for index, entry in enumerate(replay_plan(history, start, until)):
        if swapped and previous is not None:
            swapped = _expanded_since(history, previous, entry.id, swapped)
        previous = entry.id
        job = recorded_job(entry)
        if index == 0 and seed is not None:
            job = job.replace(seed=seed)
        if index == 0 and model is not None:
            job = job.replace(model=model)
        if "image" not in entry.inputs or "mask" not in entry.inputs:
            raise BadInputError(f"Entry #{entry.id} has no recorded inputs (an older project); it cannot be replayed.")
        mask = entry.inputs["mask"].to_array()
        if swapped:
            image = _rebuilt_input(history, entry, swapped)
        else:
            image = entry.inputs["image"].to_array()
        # Named input images beside image and mask (the IP-Adapter's reference) come from the entry too.
        extra = {"reference_image": entry.inputs[REFERENCE_INPUT].to_array()} if REFERENCE_INPUT in entry.inputs else {}
        started = time.perf_counter()
        result = run(job, Image.fromarray(image), mask, on_event=on_event, cancel=cancel, **extra)
        output = np.asarray(result.images[0])
        layer_pixels = result_layer_pixels(output, image)
        added = _added_layers(history, entry)
        identical = None
        if added and entry.snapshot is not None:
            recorded = entry.snapshot.layer(added[0])
            identical = recorded is not None and np.array_equal(recorded.pixels.to_array(), layer_pixels)
            if not identical:
                swapped[added[0]] = layer_pixels
        yield ReplayStep(
            entry_id=entry.id,
            title=entry.title,
            job=result.job,
            image=result.images[0],
            layer_pixels=layer_pixels,
            identical=identical,
            duration_s=time.perf_counter() - started,
            record=result.record(),
        )


def _expanded_since(
    history: History, earlier: int, later: int, swapped: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The swapped layers extended by every canvas expansion on the branch after `earlier`, before `later`."""
    path = history.ancestors(later)
    between = path[path.index(earlier) + 1 : -1] if earlier in path else []
    for entry_id in between:
        margins = margins_from_params(history.entries[entry_id].params)
        if margins is not None:
            swapped = {layer_id: expand_array(pixels, margins) for layer_id, pixels in swapped.items()}
    return swapped


def _rebuilt_input(history: History, entry: HistoryEntry, swapped: dict[str, np.ndarray]) -> np.ndarray:
    parent = history.entries.get(entry.parent_id) if entry.parent_id is not None else None
    if parent is None or parent.snapshot is None:
        return entry.inputs["image"].to_array()
    document = parent.snapshot.to_document()
    for layer in document.layers:
        if layer.id in swapped:
            layer.pixels = swapped[layer.id].copy()
    return document.composite()
