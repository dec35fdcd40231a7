"""Keeps the history and the Results strip within a memory budget (the rule: core/history_budget.py).

A check runs shortly after each recorded edit or finished job (coalesced: one walk over the tiles per
burst of edits, never per dab) and drops what the rule says, oldest first: candidates in the Results strip
(applied ones, then unapplied ones; never the one on screen or the newest batch), then old history
snapshots, then their thumbnails. The budget is the setting `memory/history_budget_mb` (ui/settings.py).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from inpaint_studio.core.history_budget import (
    Held,
    PrunePlan,
    TileCensus,
    apply_pruning,
    history_bytes,
    plan_pruning,
)
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.controllers.generation import GenerationController
from inpaint_studio.ui.panels.candidates import Candidate

CHECK_DELAY_MS = 1500


def candidate_buffers(candidate: Candidate) -> tuple[tuple[int, int], ...]:
    """(identity, bytes) of what a candidate holds: its result image and its job's input image and mask."""
    image = candidate.result.images[candidate.index]
    if isinstance(image, np.ndarray):
        size = image.nbytes
    else:  # a PIL image
        size = image.width * image.height * len(image.getbands())
    return (
        (id(image), size),
        (id(candidate.image), candidate.image.nbytes),
        (id(candidate.mask), candidate.mask.nbytes),
    )


class MemoryBudget(QObject):
    """See the module docstring. `pruned(PrunePlan)` fires after something was dropped."""

    pruned = Signal(object)

    def __init__(self, ctx: StudioContext, generation: GenerationController) -> None:
        super().__init__(ctx.window)
        self.ctx, self.generation = ctx, generation
        self._census = TileCensus()  # keeps a check at ~1 ms instead of a walk over every tile
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self.enforce)
        generation.recorder.changed.connect(self._soon)
        generation.worker.job_finished.connect(self._soon)
        generation.history_panel.set_budget(self.budget_bytes())
        generation.history_panel.memory_source = self.history_bytes

    def budget_bytes(self) -> int:
        return self.ctx.settings.history_budget_mb * 2**20

    def history_bytes(self) -> int:
        """Memory of the history's snapshots, inputs and thumbnails (what the History panel shows)."""
        return history_bytes(self.generation.recorder.history, self._census)

    def _soon(self, *_args: object) -> None:
        if not self._timer.isActive():  # coalesce: the first change of a burst starts the clock
            self._timer.start()

    def enforce(self) -> PrunePlan:
        """Check now and drop what is over budget."""
        generation = self.generation
        strip = generation.candidates
        candidates = strip.candidates()
        selected = strip.selected()
        newest = candidates[-1].result if candidates else None
        held = [
            Held(
                key=c.key,
                buffers=candidate_buffers(c),
                applied=c.applied_entry is not None,
                keep=c is selected or c.result is newest,
            )
            for c in candidates
        ]
        history = generation.recorder.history
        plan = plan_pruning(
            history,
            self.budget_bytes(),
            held=held,
            reachable=generation.recorder.reachable_ids(),
            census=self._census,
        )
        if not plan:
            return plan
        by_key = {c.key: c for c in candidates}
        for key in plan.candidates:
            strip.remove(by_key[key])
        apply_pruning(history, plan)
        generation.history_panel.refresh()
        mib = plan.freed / 2**20
        if plan.candidates:
            self.ctx.messages.show_info(
                f"{len(plan.candidates)} older result(s) were removed from Results to stay within the memory "
                f"budget ({self.budget_bytes() // 2**20} MiB); their history entries keep their parameters."
            )
        self.ctx.status.showMessage(
            f"Freed {mib:.0f} MiB for the memory budget: {len(plan.candidates)} result(s), "
            f"{len(plan.snapshots)} history state(s), {len(plan.thumbnails)} thumbnail(s).",
            6000,
        )
        self.pruned.emit(plan)
        return plan
