"""Outpainting in the studio: Image > Expand Canvas… and the Expand tool, then the fill of the new area.

One expansion is three steps, each its own entry in the history (and each undone on its own):

1. "Expand canvas": every layer and the mask grow (`ExpandCanvasCommand`, one undo step; the entry records
   the margins, so a replay can extend re-generated layers the same way). The new area is masked, except a
   strip along the image as wide as the Generate panel's blend (feather + grow): the generation's soft edge
   then ends at the image's border and every original pixel stays bit-exact.
2. "Pre-fill": the whole new area gets plausible colours (engine/prefill.py: the classical fill now, removal
   models later) as a layer above the background, so the model sees context instead of black. It runs in the
   engine thread as an EngineTask (EngineWorker.submit_task), in turn with the generations, cancellable.
3. Generate: the Generate panel's job on the new area (when "fill with the model" is on), whose candidates
   arrive in the Results strip as for any generation.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog

from inpaint_studio.core.canvas import (
    Margins,
    blend_reach,
    check_expansion,
    expansion_params,
    new_area_mask,
    outpaint_mask,
)
from inpaint_studio.core.document import Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.engine.events import JobCancelled, JobFailed
from inpaint_studio.engine.prefill import NONE, PrefillTask, check_prefill_method, prefill_label, prefill_methods
from inpaint_studio.engine.tasks import TaskFinished
from inpaint_studio.ui.canvas.tools_expand import ExpandTool
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.controllers.generation import GenerationController
from inpaint_studio.ui.document.commands import AddLayerCommand, ExpandCanvasCommand
from inpaint_studio.ui.document.history_recorder import Annotation
from inpaint_studio.ui.panels.expand_dialog import ExpandCanvasDialog

log = logging.getLogger(__name__)

PREFILL_LAYER = "Pre-fill"


class OutpaintController(QObject):
    """See the module docstring."""

    def __init__(self, ctx: StudioContext, generation: GenerationController) -> None:
        super().__init__(ctx.window)
        self.ctx, self.generation = ctx, generation
        self.document = ctx.document
        tool = ctx.canvas.tools[ExpandTool.name]
        assert isinstance(tool, ExpandTool)
        self.tool = tool
        tool.client = self
        self._prefill_id: int | None = None
        self._prefill_state: tuple[int, int, tuple[int, int], bool] | None = None  # serial, undo index, size, gen
        self._serial = 0  # bumped when another work is opened
        self.document.reset.connect(self._on_reset)
        worker = generation.worker
        worker.task_finished.connect(self._on_task_finished)
        worker.job_failed.connect(self._on_failed)
        worker.job_cancelled.connect(self._on_cancelled)

    # ---- entry points --------------------------------------------------------------------------------------
    def expand_dialog(self) -> bool:
        """Image > Expand Canvas…: ask, then expand; False when cancelled."""
        if not self.ctx.require_image():
            return False
        settings = self.ctx.settings
        last = settings.expand_margins
        try:
            margins = Margins(*last) if isinstance(last, list) and len(last) == 4 else None
        except BadInputError:
            margins = None
        anchor = settings.expand_anchor
        anchor = (anchor[0], anchor[1]) if _is_anchor(anchor) else (1, 1)
        dialog = ExpandCanvasDialog(
            self.document.width,
            self.document.height,
            [(name, prefill_label(name)) for name in prefill_methods()],
            margins=margins,
            anchor=anchor,
            prefill=settings.outpaint_prefill,
            generate=settings.outpaint_generate,
            model_name=self.generation.panel.job().model,
            parent=self.ctx.window,
        )
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        choice = dialog.choice()
        settings.expand_margins = list(choice.margins.as_tuple())
        settings.expand_anchor = list(choice.anchor)
        settings.outpaint_prefill = choice.prefill
        settings.outpaint_generate = choice.generate
        self.expand(choice.margins, choice.prefill, choice.generate)
        return True

    def expand_canvas(self, margins: Margins) -> None:
        """The Expand tool's drag ended: expand with the dialog's last fill choices."""
        self.ctx.guarded(self.expand, margins, self.ctx.settings.outpaint_prefill, self.ctx.settings.outpaint_generate)

    def expand_problem(self, message: str) -> None:
        self.ctx.messages.show_info(message)

    # ---- the work ----------------------------------------------------------------------------------------------
    def expand(self, margins: Margins, prefill: str = "classic", generate: bool = True) -> None:
        """Expand the canvas (one undo step), then pre-fill and generate as the module docstring says."""
        self.ctx.canvas.finish_gesture()
        doc = self.document
        if doc.is_empty:
            raise BadInputError("Open an image first (Ctrl+O), then expand its canvas.")
        if margins.is_zero:
            return
        prefill = check_prefill_method(prefill)
        width, height = doc.width, doc.height
        check_expansion(width, height, margins)  # one sentence before anything is allocated
        job = self.generation.panel.job()
        keep = blend_reach(job.mask.feather_px, job.mask.grow_px)
        area = outpaint_mask(width, height, margins, keep)
        new_width, new_height = margins.new_size(width, height)
        mask = np.zeros((new_height, new_width), np.uint8)
        left, top = margins.offset
        mask[top : top + height, left : left + width] = doc.mask
        np.maximum(mask, area, out=mask)
        command = ExpandCanvasCommand(doc, margins, mask=mask, text=f"Expand canvas to {new_width}×{new_height}")
        self.generation.recorder.push(
            command, Annotation("layer", command.text(), params=expansion_params(margins, width, height))
        )
        if prefill != NONE:
            self._start_prefill(margins, (width, height), prefill, generate)
        elif generate:
            self._generate()

    def _start_prefill(self, margins: Margins, old_size: tuple[int, int], method: str, generate: bool) -> None:
        image = self.document.composite()
        image.flags.writeable = False
        hole = new_area_mask(*old_size, margins)
        hole.flags.writeable = False
        self._prefill_id = self.generation.worker.submit_task(PrefillTask(image, hole, method))
        self._prefill_state = (self._serial, self.ctx.undo_stack.index(), self.document.size, generate)
        self.ctx.status.showMessage(f"Pre-filling the new canvas ({prefill_label(method).lower()})…")

    def _on_task_finished(self, event: TaskFinished) -> None:
        if event.job_id != self._prefill_id or not isinstance(event.task, PrefillTask):
            return
        state, self._prefill_id, self._prefill_state = self._prefill_state, None, None
        assert state is not None
        serial, index, size, generate = state
        doc = self.document
        # Edits made meanwhile (a mask stroke) are fine; the expansion undone, or another work opened, is not.
        if serial != self._serial or self.ctx.undo_stack.index() < index or doc.size != size:
            self.ctx.messages.show_info(
                "The canvas changed before its pre-fill was ready, so the pre-fill was dropped."
            )
            return
        filled: np.ndarray = event.value
        task = event.task
        pixels = np.zeros((doc.height, doc.width, 4), np.uint8)
        hole = task.mask >= 128
        pixels[hole, :3] = filled[hole, :3]
        pixels[hole, 3] = 255
        layer = Layer(
            name=doc.unique_name(PREFILL_LAYER), pixels=pixels, kind="paint", metadata={"prefill": task.method}
        )
        base = doc.base_layer
        position = doc.index_of(base.id) + 1 if base is not None else None
        title = f"Pre-fill the new canvas ({prefill_label(task.method).lower()})"
        command = AddLayerCommand(doc, layer, position, text=title)
        self.generation.recorder.push(
            command, Annotation("layer", title, params={"prefill": task.method}, duration_s=event.duration_s)
        )
        self.ctx.status.showMessage(f"Pre-filled in {event.duration_s:.1f} s.", 4000)
        if generate:
            self._generate()

    def _on_failed(self, event: JobFailed) -> None:
        if event.job_id == self._prefill_id:
            self._prefill_id = self._prefill_state = None
            self.ctx.messages.show_error(event.message)

    def _on_cancelled(self, event: JobCancelled) -> None:
        if event.job_id == self._prefill_id:
            self._prefill_id = self._prefill_state = None
            self.ctx.messages.show_info("The pre-fill was cancelled; the canvas stays expanded (Ctrl+Z undoes it).")

    def _on_reset(self) -> None:
        self._serial += 1

    def _generate(self) -> None:
        if not self.document.mask.any():
            self.ctx.messages.show_info(
                "The new strip is narrower than the Generate panel's blend (feather), so it keeps its pre-fill; "
                "lower the feather to repaint it."
            )
            return
        self.ctx.guarded(self.generation.generate)


def _is_anchor(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2 for v in value)
    )
