"""The Select tool's engine side: the segmentation model, the image embedding, and each click's answer.

The tool (ui/canvas/tools_select.py) sends prompts here; this controller runs them as tasks
(engine/segmentation.py) on the interactive worker (ui/engine_thread/interactive.py), a thread of its own so a
click never waits behind a generation, and hands the masks back to the tool.

The image embedding, the costly part (seconds on a CPU), is made once per state of the image: the image is
named by a key (the document's serial, bumped when another image is opened, and a pixel revision, bumped
when any pixel changes or the canvas changes size). The composite for a key is captured once, on the UI
thread, and shared read-only with every task. Choosing the tool (or changing the pixels while it is chosen)
starts the embedding at once, so the first click usually finds it ready; a click then runs the SAM decoder
only. Mask edits do not touch the pixels, so committing a selection keeps the embedding.

Without a selection model installed, choosing the tool offers to download the default (its size and licence
shown first); the download runs on the background runner with progress and cancel, like a diffusion model's.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog

from inpaint_studio.core.errors import InpaintStudioError, ModelUnavailableError
from inpaint_studio.core.selection import SelectionPrompt
from inpaint_studio.engine.events import JobCancelled, JobFailed
from inpaint_studio.engine.segmentation import (
    DEFAULT_SEGMENTER,
    EncodeImage,
    SegmenterCache,
    SelectObject,
    detect_segmenter_folder,
    is_segmenter_installed,
    segmenter_catalog,
    segmenter_entry,
)
from inpaint_studio.engine.tasks import TaskFinished
from inpaint_studio.ui.canvas.tools_select import ObjectSelectTool
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.engine_thread.downloads import DownloadProgress, ModelDownloader
from inpaint_studio.ui.engine_thread.interactive import InteractiveWorker

log = logging.getLogger(__name__)

PREPARE_DELAY_MS = 400  # after the pixels change with the tool chosen: undo/redo bursts encode once
HINT = "Select: click an object · Alt-click leaves a part out · drag a box · Enter applies, Esc drops"
OTHER_FOLDER = "A model folder on this computer…"


class SelectionController(QObject):
    """See the module docstring."""

    def __init__(self, ctx: StudioContext, worker: InteractiveWorker | None = None, owns_worker: bool = True) -> None:
        super().__init__(ctx.window)
        self.ctx = ctx
        self.document = ctx.document
        tool = ctx.canvas.tools[ObjectSelectTool.name]
        assert isinstance(tool, ObjectSelectTool)
        self.tool = tool
        tool.client = self
        self._worker: InteractiveWorker | None = None
        self._owns_worker = owns_worker if worker is not None else True
        if worker is not None:
            self._attach(worker)
        self.downloader = ModelDownloader(ctx.runner, self)
        self._serial = 0
        self._revision = 0
        self._image: tuple[Hashable, np.ndarray] | None = None  # the composite captured for the current key
        self._encoding: Hashable | None = None  # key of the embedding on its way
        self._encode_id: int | None = None
        self._encoded: set[Hashable] = set()  # keys whose embedding the worker made (it keeps the latest)
        self._select_id: int | None = None
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_DELAY_MS)
        self._prepare_timer.timeout.connect(lambda: ctx.guarded(self.prepare))
        doc = self.document
        doc.pixels_changed.connect(self._on_pixels_changed)
        doc.resized.connect(self._on_resized)
        doc.reset.connect(self._on_reset)
        ctx.canvas.tool_changed.connect(self._on_tool_changed)
        d = self.downloader
        d.progress.connect(self._on_download_progress)
        d.finished.connect(self._on_download_finished)
        d.failed.connect(self._on_download_failed)
        d.cancelled.connect(self._on_download_cancelled)
        self._download_message: str | None = None
        self._status_text: str | None = None  # the status line this controller wrote last

    # ---- the model ----------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The selection model's reference (the setting, or the catalog's default)."""
        return self.ctx.settings.segmenter_model or DEFAULT_SEGMENTER

    @property
    def worker(self) -> InteractiveWorker:
        """The interactive worker (started on first use: a window that never selects starts no thread)."""
        if self._worker is None:
            self._owns_worker = True
            self._attach(InteractiveWorker(self))
        assert self._worker is not None
        return self._worker

    def _attach(self, worker: InteractiveWorker) -> None:
        self._worker = worker
        worker.task_finished.connect(self._on_finished)
        worker.task_failed.connect(self._on_failed)
        worker.task_cancelled.connect(self._on_cancelled)

    def cache(self) -> SegmenterCache | None:
        """The worker thread's model cache (tests and benchmarks read its counters while it is idle)."""
        return None if self._worker is None else self._worker.workspace.peek(SegmenterCache)

    def offer_download(self) -> None:
        entry = segmenter_entry(self.model)
        if entry is None:
            self.ctx.messages.show_error(
                f"The selection model {self.model} is not installed; choose another one (Tools > Selection Model…).",
                [("Choose model…", lambda: self.ctx.guarded(self.choose_model))],
            )
            return
        self.ctx.messages.show_info(
            f"Click-to-select needs a segmentation model: {entry.name}, a {entry.download_mb:g} MB download "
            f"(licence {entry.licence}).",
            [
                ("Download", lambda: self.ctx.guarded(self.start_download)),
                ("Choose model…", lambda: self.ctx.guarded(self.choose_model)),
            ],
        )

    def start_download(self) -> None:
        model = self.model
        if self.downloader.start(model):
            self._status(f"Downloading {model}…")
            self._download_message = f"Downloading {model} for the Select tool…"
            self.ctx.messages.show_info(self._download_message, [("Cancel", lambda: self.downloader.cancel(model))])

    def choose_model(self) -> str | None:
        """Ask which selection model to use (catalog entries with size and licence, or a local folder)."""
        entries = segmenter_catalog()
        labels = [
            f"{e.name}: {e.download_mb:g} MB, {e.licence}{' (installed)' if is_segmenter_installed(e.id) else ''}"
            for e in entries
        ]
        current = next((i for i, e in enumerate(entries) if e.id == self.model), len(labels))
        choice, ok = QInputDialog.getItem(
            self.ctx.window,
            "Selection model",
            "Model for the Select tool (W):",
            [*labels, OTHER_FOLDER],
            current,
            False,
        )
        if not ok:
            return None
        if choice == OTHER_FOLDER:
            from pathlib import Path

            folder = QFileDialog.getExistingDirectory(self.ctx.window, "Folder of a Segment Anything model")
            if not folder:
                return None
            reference = str(detect_segmenter_folder(Path(folder)).path)  # one sentence when it is not one
        else:
            reference = entries[labels.index(choice)].id
        self.ctx.settings.segmenter_model = reference
        self._encoded.clear()
        self._encoding, self._encode_id = None, None
        self.tool.drop()
        if self.ctx.canvas.tool is self.tool:
            self.activate()
        return reference

    # ---- the image ------------------------------------------------------------------------------------------
    @property
    def image_key(self) -> Hashable:
        return (self._serial, self._revision)

    def _current_image(self) -> np.ndarray:
        key = self.image_key
        if self._image is None or self._image[0] != key:
            pixels = self.document.composite()
            pixels.flags.writeable = False
            self._image = (key, pixels)
        return self._image[1]

    def activate(self) -> None:
        """The tool was chosen: offer the model if it is missing, else start analysing the image."""
        if self.document.is_empty:
            return
        if not is_segmenter_installed(self.model):
            self.offer_download()
            return
        self._status(HINT)
        self.prepare()

    def prepare(self) -> None:
        """Make the image embedding now (in the interactive thread), unless it is made or on its way."""
        if self.document.is_empty or self.image_key in self._encoded or self._encoding == self.image_key:
            return
        if not is_segmenter_installed(self.model):
            return
        self._encoding = self.image_key
        self._status("Analysing the image for the Select tool (once per image)…")
        task = EncodeImage(self.model, self.image_key, self._current_image())
        self._encode_id = self.worker.submit(task, replaces="encode")

    # ---- the tool's client ------------------------------------------------------------------------------------
    def request_selection(self, prompt: SelectionPrompt) -> None:
        if not is_segmenter_installed(self.model):
            self.tool.request_failed(prompt)
            self.offer_download()
            return
        key = self.image_key
        if key not in self._encoded:
            self._status("Analysing the image for the Select tool (once per image)…")
        task = SelectObject(self.model, key, self._current_image(), prompt)
        self._select_id = self.worker.submit(task, replaces="select")

    def selection_problem(self, message: str) -> None:
        self.ctx.messages.show_error(message)

    def selection_ended(self) -> None:
        if self._select_id is not None and self._worker is not None:
            self._worker.cancel(self._select_id)
        self._select_id = None
        if self.ctx.canvas.tool is self.tool:
            self._status(HINT)

    # ---- answers ------------------------------------------------------------------------------------------------
    def _on_finished(self, event: TaskFinished) -> None:
        task = event.task
        if isinstance(task, EncodeImage | SelectObject):
            self._encoded.add(task.key)
        if isinstance(task, EncodeImage):
            if event.job_id == self._encode_id:
                self._encoding, self._encode_id = None, None
            if self.ctx.canvas.tool is self.tool and not self.tool.waiting:
                self._status(f"{HINT} (image analysed in {event.value.duration_s:.1f} s)")
            return
        if not isinstance(task, SelectObject):
            return
        if event.job_id == self._select_id:
            self._select_id = None
        segmentation = event.value
        if self.tool.show_result(task.prompt, segmentation.mask):
            if segmentation.is_empty:
                self.ctx.messages.show_info("The model found no object there; click on another part of it.")
            self._status(
                f"{'Cut out of' if self.tool.subtract else 'Add to'} the mask: Enter applies, Esc drops · "
                f"click adds, Alt-click leaves out ({segmentation.duration_s * 1000:.0f} ms)"
            )

    def _on_failed(self, event: JobFailed) -> None:
        if event.job_id == self._encode_id:
            self._encoding, self._encode_id = None, None
        elif event.job_id == self._select_id:
            self._select_id = None
            self.tool.request_failed(self.tool.prompt)
        else:
            return  # a superseded request: its successor reports
        missing = isinstance(event.error, ModelUnavailableError) and not is_segmenter_installed(self.model)
        if missing and segmenter_entry(self.model) is not None:
            self.offer_download()
        else:
            self.ctx.messages.show_error(event.message)

    def _on_cancelled(self, event: JobCancelled) -> None:
        if event.job_id == self._select_id:
            self._select_id = None
        if event.job_id == self._encode_id:
            self._encoding, self._encode_id = None, None

    # ---- document ------------------------------------------------------------------------------------------------
    def _on_pixels_changed(self, rect: tuple[int, int, int, int]) -> None:
        if rect[2] <= rect[0] or rect[3] <= rect[1]:
            return
        self._revision += 1
        if self.ctx.canvas.tool is self.tool:
            self._prepare_timer.start()

    def _on_resized(self, _offset: tuple[int, int]) -> None:
        self.tool.drop()
        self._revision += 1
        if self.ctx.canvas.tool is self.tool:
            self._prepare_timer.start()

    def _on_reset(self) -> None:
        self.tool.drop()
        self._serial += 1
        self._image = None
        self._encoded.clear()
        if self.ctx.canvas.tool is self.tool:
            self._prepare_timer.start()

    def _on_tool_changed(self, name: str) -> None:
        if name == self.tool.name:
            self.ctx.guarded(self.activate)
            return
        self._prepare_timer.stop()
        if self._status_text is not None and self.ctx.status.currentMessage() == self._status_text:
            self.ctx.status.clearMessage()  # the Select tool's hints end with it

    # ---- downloads -------------------------------------------------------------------------------------------------
    def _on_download_progress(self, progress: DownloadProgress) -> None:
        mb = 1e6
        if progress.total_bytes:
            text = f"{progress.done_bytes / mb:.0f} / {progress.total_bytes / mb:.0f} MB"
        else:
            text = f"{progress.files_done}/{progress.files_total} files"
        self._status(f"Downloading {progress.repo_id}: {text}")

    def _end_download_message(self) -> None:
        if self._download_message is not None and self.ctx.messages.text() == self._download_message:
            self.ctx.messages.dismiss()
        self._download_message = None
        self.ctx.status.clearMessage()

    def _on_download_failed(self, _repo_id: str, message: str) -> None:
        self._end_download_message()
        self.ctx.messages.show_error(message)

    def _on_download_cancelled(self, repo_id: str) -> None:
        self._end_download_message()
        self.ctx.messages.show_info(f"The download of {repo_id} was cancelled; it resumes where it stopped next time.")

    def _on_download_finished(self, repo_id: str, _path: str) -> None:
        self._end_download_message()
        if not is_segmenter_installed(repo_id):
            self.ctx.messages.show_error(
                f"{repo_id} was downloaded but is not a selection model this app can load; choose another one."
            )
            return
        self.ctx.messages.show_info(f"{repo_id} is ready: click an object with the Select tool (W).")
        if self.ctx.canvas.tool is self.tool:
            self.activate()

    def _status(self, text: str) -> None:
        self._status_text = text
        self.ctx.status.showMessage(text)

    # ---- lifetime -------------------------------------------------------------------------------------------------
    def shutdown(self) -> bool:
        self.downloader.cancel_all()
        self._prepare_timer.stop()
        if self._worker is None:
            return True
        if not self._owns_worker:
            self._worker.cancel_all()
            return True
        try:
            return self._worker.shutdown()
        except InpaintStudioError:  # pragma: no cover - shutdown reports no errors
            return False
