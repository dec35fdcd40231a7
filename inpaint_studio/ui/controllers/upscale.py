"""Image > Upscale: the document enlarged x2 / x4 by an upscaling model, as an undoable edit with a history entry.

The upscale runs on the engine thread as an `EngineTask` (engine/tasks.py, `UpscaleTask`): the composite goes
through the model (engine/upscale.py: tiled, cancellable), and every layer and the mask are resized there
too (Lanczos for the layers, nearest for the mask), so the window never waits for the pixels. Back on the
UI thread the document takes the new size with its resized layers and a new result layer on top holding the
model's output ("Upscaled x4 (model)"), in one `ResizeDocumentCommand` (Ctrl+Z gives the original back), and
the history records an "upscale" entry with the job, the model and the time it took.

If the work changed while the upscale ran (a stroke, another result), the result is set aside with a
message rather than applied over edits it did not see. Progress and Cancel sit in the status bar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QProgressBar, QToolButton

from inpaint_studio.core.document import Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.parameters import addon_name
from inpaint_studio.engine.addons import download_addon
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobProgress
from inpaint_studio.engine.tasks import TaskContext, TaskFinished
from inpaint_studio.engine.upscale import UpscaleJob, UpscaleResult
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.document.commands import ResizeDocumentCommand
from inpaint_studio.ui.document.history_recorder import Annotation, HistoryRecorder
from inpaint_studio.ui.engine_thread.downloads import DownloadProgress, ModelDownloader
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.panels.upscale_dialog import UpscaleDialog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Frozen:
    """What the task reads: copies taken on the UI thread (the document keeps changing meanwhile)."""

    composite: np.ndarray
    layers: list[tuple[str, np.ndarray]]  # (id, pixels)
    mask: np.ndarray


@dataclass
class UpscaleOutcome:
    result: UpscaleResult
    layers: dict[str, np.ndarray]  # layer id -> resized pixels
    mask: np.ndarray


def _resize_all(frozen: _Frozen, size: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    layers = {}
    for layer_id, pixels in frozen.layers:
        layers[layer_id] = np.asarray(Image.fromarray(pixels, "RGBA").resize(size, Image.Resampling.LANCZOS))
    mask = np.asarray(Image.fromarray(frozen.mask).resize(size, Image.Resampling.NEAREST))
    return layers, np.ascontiguousarray(mask)


@dataclass(frozen=True)
class UpscaleTask:
    """The composite through the upscaler, then every layer and the mask resized to the same size."""

    job: UpscaleJob
    frozen: _Frozen = field(repr=False)
    target: tuple[int, int]

    @property
    def title(self) -> str:
        return f"Upscaling x{self.job.scale}"

    def run(self, context: TaskContext) -> UpscaleOutcome:
        def progress(done: int, total: int) -> None:
            context.emit(JobProgress(context.job_id, done, total, 0))

        result = context.workspace.engine.upscale(
            self.job, self.frozen.composite, progress=progress, cancel=context.cancel
        )
        context.cancel.raise_if_cancelled()
        layers, mask = _resize_all(self.frozen, self.target)
        return UpscaleOutcome(result, layers, mask)


class UpscaleController(QObject):
    """See the module docstring."""

    def __init__(self, ctx: StudioContext, worker: EngineWorker, recorder: HistoryRecorder) -> None:
        super().__init__(ctx.window)
        self.ctx, self.worker, self.recorder = ctx, worker, recorder
        self.document = ctx.document
        self._task_id: int | None = None
        self._revision = 0
        self._job: UpscaleJob | None = None
        self.downloader = ModelDownloader(ctx.runner, self, download=download_addon)
        self.downloader.finished.connect(self._on_downloaded)
        self.downloader.failed.connect(lambda _ref, message: ctx.messages.show_error(message))
        self.downloader.progress.connect(self._on_download_progress)
        self.dialog: UpscaleDialog | None = None
        self._progress = QProgressBar()
        self._progress.setMaximumWidth(160)
        self._progress.setFormat("Upscaling %p%")
        self._cancel = QToolButton()
        self._cancel.setText("Cancel")
        self._cancel.setToolTip("Stop the upscale; nothing is changed")
        self._cancel.clicked.connect(self.cancel)
        self._create_actions()
        worker.job_progress.connect(self._on_progress)
        worker.task_finished.connect(self._on_finished)
        worker.job_failed.connect(self._on_failed)
        worker.job_cancelled.connect(self._on_cancelled)

    def _create_actions(self) -> None:
        window = self.ctx.window
        specs = (
            ("upscale", "&Upscale…", "Ctrl+Alt+U", self.open_dialog),
            ("upscale_x2", "Upscale &x2 (last upscaler)", "", lambda: self.upscale_again(2)),
            ("upscale_x4", "Upscale x&4 (last upscaler)", "", lambda: self.upscale_again(4)),
        )
        for name, text, key, slot in specs:
            action = QAction(text, window)
            action.setObjectName(name)
            if key:
                action.setShortcut(QKeySequence(key))
            action.setToolTip(text.replace("&", "").rstrip("…"))
            action.triggered.connect(lambda _checked=False, s=slot: self.ctx.guarded(s))
            window.addAction(action)
            self.ctx.actions[name] = action

    # ---- starting -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task_id is not None

    def open_dialog(self) -> UpscaleDialog | None:
        if not self.ctx.require_image():
            return None
        settings = self.ctx.settings
        dialog = UpscaleDialog(
            self.ctx.runner,
            settings.upscaler_folder,
            settings.upscale_model,
            settings.upscale_scale,
            self.document.size,
            self.ctx.window,
        )
        dialog.download_requested.connect(self.start_download)
        self.dialog = dialog
        dialog.finished.connect(lambda result: self._dialog_closed(dialog, result))
        dialog.open()
        return dialog

    def _dialog_closed(self, dialog: UpscaleDialog, result: int) -> None:
        self.dialog = None
        if result == QDialog.DialogCode.Accepted:
            self.ctx.guarded(self.upscale, dialog.job())

    def upscale_again(self, scale: int) -> int | None:
        """Upscale with the last upscaler used (the dialog when there is none yet)."""
        model = self.ctx.settings.upscale_model
        if not model:
            self.open_dialog()
            return None
        return self.upscale(UpscaleJob(model=model, scale=scale))

    def upscale(self, job: UpscaleJob) -> int | None:
        """Start upscaling the document (a task on the engine thread); returns the task id."""
        if not self.ctx.require_image():
            return None
        if self.running:
            raise BadInputError("An upscale is already running; wait for it or cancel it first.")
        self.ctx.canvas.finish_gesture()
        problems = job.problems(self.document.size)
        if problems:
            raise BadInputError(" ".join(problems))
        doc = self.document
        frozen = _Frozen(doc.composite(), [(layer.id, layer.pixels.copy()) for layer in doc.layers], doc.mask.copy())
        target = (doc.width * job.scale, doc.height * job.scale)

        self._job, self._revision = job, self.recorder.revision
        self.ctx.settings.upscale_model, self.ctx.settings.upscale_scale = job.model, job.scale
        self._task_id = self.worker.submit_task(UpscaleTask(job, frozen, target))
        self._show_progress(0, 1)
        return self._task_id

    def cancel(self) -> None:
        if self._task_id is not None:
            self.worker.cancel(self._task_id)

    # ---- progress and the result ----------------------------------------------------------------------
    def _show_progress(self, done: int, total: int) -> None:
        status = self.ctx.status
        if self._progress.parent() is None or not self._progress.isVisible():
            status.addPermanentWidget(self._progress)
            status.addPermanentWidget(self._cancel)
            self._progress.show()
            self._cancel.show()
        self._progress.setRange(0, max(1, total))
        self._progress.setValue(done)

    def _hide_progress(self) -> None:
        for widget in (self._progress, self._cancel):
            self.ctx.status.removeWidget(widget)
            widget.hide()

    def _on_progress(self, event: JobProgress) -> None:
        if event.job_id == self._task_id:
            self._show_progress(event.step, event.total)

    def _on_finished(self, event: TaskFinished) -> None:
        if event.job_id != self._task_id:
            return
        self._task_id = None
        self._hide_progress()
        self.ctx.guarded(self.apply, event.value)

    def apply(self, outcome: UpscaleOutcome) -> None:
        """The upscaled document, as one undoable edit with its history entry."""
        doc = self.document
        if self.recorder.revision != self._revision:
            raise BadInputError(
                "The image changed while it was being upscaled, so the result was set aside; upscale again."
            )
        result = outcome.result
        width, height = result.image.size
        layers = []
        for layer in doc.layers:
            pixels = outcome.layers.get(layer.id)
            if pixels is None:
                continue
            copy = Layer(
                name=layer.name,
                pixels=np.ascontiguousarray(pixels),
                kind=layer.kind,
                visible=layer.visible,
                opacity=layer.opacity,
                metadata=dict(layer.metadata),
                id=layer.id,
            )
            layers.append(copy)
        name = f"Upscaled x{result.job.scale} ({addon_name(result.job.model)})"
        rgba = np.asarray(result.image.convert("RGBA"))
        upscaled = Layer(name=doc.unique_name(name[:40]), pixels=np.ascontiguousarray(rgba), kind="result")
        upscaled.metadata["upscale"] = result.job.to_dict()
        layers.append(upscaled)
        annotation = Annotation(
            kind="upscale",
            title=name,
            params=result.record(),
            duration_s=result.duration_s,
            layer=upscaled,
        )
        command = ResizeDocumentCommand(doc, (width, height), layers, outcome.mask, f"Upscale x{result.job.scale}")
        self.recorder.push(command, annotation)
        self.ctx.messages.show_info(
            f"Upscaled to {width}×{height} in {result.duration_s:.1f} s; Ctrl+Z gives the original size back."
        )

    def _on_failed(self, event: JobFailed) -> None:
        if event.job_id != self._task_id:
            return
        self._task_id = None
        self._hide_progress()
        self.ctx.messages.show_error(event.message)

    def _on_cancelled(self, event: JobCancelled) -> None:
        if event.job_id != self._task_id:
            return
        self._task_id = None
        self._hide_progress()
        self.ctx.messages.show_info("The upscale was cancelled; nothing was changed.")

    # ---- downloads ------------------------------------------------------------------------------------
    def start_download(self, reference: str) -> None:
        if self.downloader.start(reference):
            self.ctx.messages.show_info(
                f"Downloading {reference}…", [("Cancel", lambda: self.downloader.cancel(reference))]
            )

    def _on_download_progress(self, progress: DownloadProgress) -> None:
        if progress.total_bytes:
            done, total = progress.done_bytes / 1e9, progress.total_bytes / 1e9
            self.ctx.status.showMessage(f"Downloading {progress.repo_id}: {done:.2f} / {total:.2f} GB", 2000)

    def _on_downloaded(self, reference: str, _path: str) -> None:
        self.ctx.messages.show_info(f"{reference} is downloaded and ready to use.")
        if self.dialog is not None:
            self.dialog.refresh()
