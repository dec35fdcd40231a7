"""Generation in the studio: the Generate panel, the Results strip, the History panel and the engine worker.

The one place where generation errors become messages: worker failures arrive as `JobFailed` whose
message is already one sentence saying what to do; UI-side problems (no image, empty mask, bad values)
are raised as InpaintStudioError and shown through `StudioContext.guarded`. Every job is built on the
UI thread from the panel's settings model (a frozen InpaintJob plus copies of the composite and mask), and
every result is applied on the UI thread through an undo command, so Ctrl+Z removes it.

Built by ui/window/composition.py, which docks its panels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QWidget

from inpaint_studio.core import masks
from inpaint_studio.core.document import Layer
from inpaint_studio.core.errors import BadInputError, InpaintStudioError
from inpaint_studio.core.generation_settings import GenerationSettings
from inpaint_studio.core.history import HistoryEntry, TiledArray, result_sources
from inpaint_studio.core.jobspec import CLASSIC_MODEL, PREFILL_NONE, REFERENCE_INPUT, ClassicalMethod, InpaintJob, Task
from inpaint_studio.core.parameters import addon_name, job_overrides_from_parameters, parse_parameters
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.core.results import result_layer_pixels
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.engine import addons as addon_files
from inpaint_studio.engine.classical import LARGE_HOLE_PX
from inpaint_studio.engine.events import InpaintResult, JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.model_list import best_removal, model_to_run, suggested_removal
from inpaint_studio.engine.schedulers import scheduler_names
from inpaint_studio.ui.background import TaskState
from inpaint_studio.ui.canvas.overlay import CanvasOverlay
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.document.commands import AddLayerCommand, StepCommand, mask_change
from inpaint_studio.ui.document.history_recorder import Annotation, HistoryRecorder
from inpaint_studio.ui.engine_thread.downloads import DownloadProgress, ModelDownloader
from inpaint_studio.ui.engine_thread.worker import EngineInfo, EngineWorker, JobQueued
from inpaint_studio.ui.panels.candidates import Candidate, CandidateStrip
from inpaint_studio.ui.panels.generate.panel import GeneratePanel
from inpaint_studio.ui.panels.history_panel import HistoryPanel
from inpaint_studio.ui.settings import ENGINE_SERVER, RemoteEngineFactory, engine_factory

log = logging.getLogger(__name__)

WARM_UP_DELAY_MS = 800  # after the window is shown: the first paint and the open dialog come first
SHUTDOWN_TIMEOUT_S = 3.0
PREVIEW_EVERY = 2  # live preview every N steps (the latent preview is cheap; the transfer is not free)
LAYER_NAME_CHARS = 40


@dataclass(frozen=True)
class Submitted:
    """What the UI remembers about a job it submitted."""

    job: InpaintJob
    image: np.ndarray
    mask: np.ndarray
    derived_from: tuple[int, ...]
    rerun_of: int | None
    document_serial: int
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)  # named input images ("reference")


class GenerationController(QObject):
    """See the module docstring."""

    engine_status = Signal(str)  # what the status bar says about the engine ("Engine: CPU · model")

    def __init__(
        self,
        ctx: StudioContext,
        settings_model: GenerationSettings,
        user_models: UserModels,
        *,
        worker: EngineWorker,
        owns_worker: bool,
        warm_up_delay_ms: int | None = WARM_UP_DELAY_MS,
    ) -> None:
        """`owns_worker`: shut the worker down with the window (tests share one between windows).
        `warm_up_delay_ms` None: never load the engine before the first job."""
        super().__init__(ctx.window)
        self.ctx = ctx
        self.document = ctx.document
        self.undo_stack = ctx.undo_stack
        self.canvas = ctx.canvas
        self.message_bar = ctx.messages
        self.settings_model = settings_model
        self.owns_worker = owns_worker
        self.worker = worker
        self._apply_watchdog_settings()
        self._stall_message: str | None = None
        self.downloader = ModelDownloader(ctx.runner, self)
        # Add-ons (fast-mode LoRAs, IP-Adapters): downloaded the same way, their own files only.
        self.addon_downloader = ModelDownloader(ctx.runner, self, download=addon_files.download_addon)
        self._submitted: dict[int, Submitted] = {}
        self._document_serial = 0
        self._progress_origin: tuple[int, float] | None = None  # (step, time) of the first progress event
        self._warm_up_delay_ms = warm_up_delay_ms
        self._shown_once = False

        self.panel = GeneratePanel(settings_model, user_models, ctx.runner, app_settings=ctx.settings)
        self.panel.addons.layer_provider = lambda: [(layer.id, layer.name) for layer in reversed(self.document.layers)]
        self.panel.addons.layer_pixels = self._layer_pixels
        self.candidates = CandidateStrip()
        self.recorder = HistoryRecorder(self.document, self.undo_stack, self)
        self.history_panel = HistoryPanel(self.recorder)
        self.overlay = CanvasOverlay(self.canvas)
        self._create_actions()
        self._connect()
        self.refresh_server_models()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._update_running()

    # ---- set-up -------------------------------------------------------------------------------------
    def _action(self, name: str, text: str, shortcuts: list[str], slot: Any, widget: QWidget, context: Any) -> QAction:
        action = QAction(text, widget)
        action.setObjectName(name)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(context)
        action.triggered.connect(lambda _checked=False: self.ctx.guarded(slot))
        widget.addAction(action)
        self.ctx.actions[name] = action
        return action

    def _create_actions(self) -> None:
        window, window_wide = self.ctx.window, Qt.ShortcutContext.WindowShortcut
        self.generate_action = self._action(
            "generate", "&Generate", ["Ctrl+Return", "Ctrl+Enter"], self.generate, window, window_wide
        )
        # Photoshop's "Delete and Fill Selection" key; in a text field Shift+Delete stays with the field.
        self.remove_action = self._action(
            "remove", "&Remove Masked Area", ["Shift+Del"], self.remove, window, window_wide
        )
        self.cancel_action = self._action("cancel_generation", "&Cancel", ["Esc"], self.cancel, window, window_wide)
        self.cancel_all_action = self._action(
            "cancel_all_generations", "Cancel &All", ["Shift+Esc"], self.cancel_all, window, window_wide
        )
        # Enter applies only where it means nothing else: on the canvas (the strip handles its own Enter).
        self.apply_action = self._action(
            "apply_candidate",
            "&Apply Result",
            ["Return", "Enter"],
            self.apply_selected,
            self.canvas,
            Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        self.apply_action.setEnabled(False)

    def _connect(self) -> None:
        w = self.worker
        w.job_queued.connect(self._on_queued)
        w.job_started.connect(self._on_started)
        w.job_progress.connect(self._on_progress)
        w.job_finished.connect(self._on_finished)
        w.job_cancelled.connect(self._on_cancelled)
        w.job_failed.connect(self._on_failed)
        w.queue_changed.connect(self._update_running)
        w.busy_changed.connect(self._update_running)
        w.job_done.connect(self._update_running)
        w.engine_loading.connect(self._on_engine_loading)
        w.engine_ready.connect(self._on_engine_ready)
        w.engine_failed.connect(self.message_bar.show_error)
        w.job_stalled.connect(self._on_stalled)
        w.job_resumed.connect(self._on_resumed)
        p = self.panel
        p.generate_requested.connect(lambda: self.ctx.guarded(self.generate))
        p.remove_requested.connect(lambda: self.ctx.guarded(self.remove))
        p.cancel_requested.connect(self.cancel)
        p.models.download_requested.connect(self.start_download)
        p.models.download_cancel_requested.connect(self.downloader.cancel)
        p.models.add_model_failed.connect(self.message_bar.show_error)
        p.addons.message.connect(self.message_bar.show_error)
        p.addons.download_requested.connect(lambda reference, _family: self.start_addon_download(reference))
        a = self.addon_downloader
        a.progress.connect(self._on_addon_download_progress)
        a.finished.connect(self._on_addon_download_finished)
        a.failed.connect(self._on_download_failed_message)
        a.cancelled.connect(self._on_download_cancelled_message)
        d = self.downloader
        d.progress.connect(self._on_download_progress)
        d.finished.connect(self._on_download_finished)
        d.failed.connect(self._on_download_failed)
        d.cancelled.connect(self._on_download_cancelled)
        c = self.candidates
        c.preview_requested.connect(self.preview_candidate)
        c.apply_requested.connect(lambda cand: self.ctx.guarded(self.apply, cand))
        c.more_requested.connect(lambda cand: self.ctx.guarded(self.more_like_this, cand))
        c.discard_requested.connect(self._on_discarded)
        self.recorder.changed.connect(self._refresh_applied_marks)
        h = self.history_panel
        h.preview_requested.connect(self.preview_history)
        h.use_parameters_requested.connect(lambda i: self.ctx.guarded(self.use_parameters, i))
        h.rerun_requested.connect(lambda i: self.ctx.guarded(self.rerun, i))
        h.branch_requested.connect(lambda i: self.ctx.guarded(self.branch_from, i))
        doc = self.document
        doc.reset.connect(self._on_document_reset)
        doc.resized.connect(lambda _offset: self.end_preview())  # a preview's place on the canvas moved
        doc.pixels_changed.connect(self._on_document_changed)
        doc.mask_changed.connect(self._on_document_changed)
        doc.layers_changed.connect(self._on_document_changed)

    # ---- generating ---------------------------------------------------------------------------------
    def generate(self) -> int:
        """Submit the panel's job for the current image and mask (queued when one runs); returns its id."""
        self.canvas.finish_gesture()
        if self.document.is_empty:
            raise BadInputError("Open an image first (Ctrl+O), then paint a mask over the area to repaint.")
        job = self.panel.job()
        # The default choice (the classical fill on Automatic) means removal once a removal model is installed.
        job = job.replace(model=model_to_run(job, self.panel.models.choices()))
        return self._submit_current(job)

    def remove(self) -> int:
        """Remove what is under the mask: the best installed removal network, else the classical fill."""
        best = best_removal(self.panel.models.choices())
        job = self.panel.job().replace(
            model=best.reference if best is not None else CLASSIC_MODEL,
            classical_method=ClassicalMethod.AUTO,
            prompt="",
            negative_prompt="",
            prefill=PREFILL_NONE,
            task=Task.INPAINT,
            controlnet=None,
            refiner=None,
        )
        return self._submit_current(job)

    def _submit_current(self, job: InpaintJob) -> int:
        """Check `job` and submit it for the current image and mask."""
        self.canvas.finish_gesture()
        if self.document.is_empty:
            raise BadInputError("Open an image first (Ctrl+O), then paint a mask over the area to repaint.")
        problems = job.problems()
        if problems:
            raise BadInputError(" ".join(problems))
        masks.require_nonempty(self.document.mask)
        image = self.document.composite()  # RGBA: the engine keeps transparency; opaque stays opaque
        mask = self.document.mask
        return self.submit(
            job,
            image,
            mask,
            derived_from=tuple(result_sources(self.document, masks.bbox(mask))),
            inputs=self.named_inputs(job),
        )

    def named_inputs(self, job: InpaintJob) -> dict[str, np.ndarray]:
        """The input images a job needs beside image and mask: the IP-Adapter's reference."""
        if job.is_classical or not job.ip_adapter:
            return {}
        reference = self.panel.addons.reference
        if reference is None:
            raise BadInputError(
                "The IP-Adapter needs a reference image; choose one under Add-ons > Reference (a file or a layer), "
                "or set the reference to None."
            )
        return {REFERENCE_INPUT: reference}

    def submit(
        self,
        job: InpaintJob,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        derived_from: tuple[int, ...] = (),
        rerun_of: int | None = None,
        inputs: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        if self.worker.is_closed:
            raise InpaintStudioError("The generation engine has been shut down; restart the application.")
        preview_every = PREVIEW_EVERY if self.panel.live_preview and not job.is_classical else 0
        if self.panel.models.user_models.is_unsafe_allowed(job.model):  # the user's recorded opt-in
            self.worker.allow_unsafe_checkpoint(job.model)
        extra = {"inputs": dict(inputs)} if inputs else {}  # workers of other kinds take no named inputs
        job_id = self.worker.submit(job, image, mask, preview_every=preview_every, **extra)
        # The worker made its own read-only copies; keep those (no second copy of a large photo).
        request = self.worker.request(job_id)
        self._submitted[job_id] = Submitted(
            job,
            request.image if request else image,
            request.mask if request else mask,
            derived_from,
            rerun_of,
            self._document_serial,
            dict(getattr(request, "inputs", None) or inputs or {}),
        )
        return job_id

    def cancel(self) -> None:
        """Esc: stop the running generation (queued ones continue); with none running, end a preview."""
        if self.worker.running_work_id is not None and self.worker.cancel_current():
            self.panel.set_status("Cancelling…")
        elif self.worker.queued_work_ids():
            self.worker.cancel_queued(self.worker.queued_work_ids()[0])
        elif self.overlay.showing:
            self.end_preview()
        self._update_running()

    def cancel_all(self) -> None:
        self.worker.cancel_all()
        self._update_running()

    # ---- worker events ------------------------------------------------------------------------------
    def _on_queued(self, event: JobQueued) -> None:
        if event.position > 0:
            self.panel.set_status(f"Queued; {event.position} job(s) ahead.")

    def _on_started(self, event: JobStarted) -> None:
        self._progress_origin = None
        name = "classical fill" if event.job.is_classical else "generation"
        if any(c.reference == event.job.model and c.is_removal for c in self.panel.models.choices()):
            name = "removal"
        self.panel.set_status(f"Running the {name}…")
        self.panel.set_progress(0, event.total_steps, None, len(self.worker.queued_work_ids()))

    def _on_progress(self, event: JobProgress) -> None:
        if self.worker.is_task(event.job_id):  # an EngineTask (a pre-fill): its progress, no time estimate
            self.panel.set_progress(event.step, event.total, None, len(self.worker.queued_work_ids()))
            return
        now = time.monotonic()
        left = None
        if self._progress_origin is None:
            self._progress_origin = (event.step, now)
        else:
            first_step, first_time = self._progress_origin
            if event.step > first_step:
                rate = (now - first_time) / (event.step - first_step)
                left = rate * (event.total - event.step)
        self.panel.set_progress(event.step, event.total, left, len(self.worker.queued_work_ids()), event.label())
        if event.preview is not None:
            self.panel.set_preview(np.asarray(event.preview))

    def _on_finished(self, event: JobFinished) -> None:
        submitted = self._submitted.pop(event.job_id, None)
        result = event.result
        if result.record().seed_used is not None:  # the classical fill and most removal networks use none
            self.panel.show_seed(result.job.seed)
        device_name = result.extra.get("device_name")
        if device_name:
            self.engine_status.emit(f"Engine: {device_name} · {result.record().model_name}")
        if submitted is None or submitted.document_serial != self._document_serial:
            self.message_bar.show_info("A result for a previously open image was set aside; generate again here.")
            return
        candidates = [
            Candidate(
                result=result,
                index=i,
                image=submitted.image,
                mask=submitted.mask,
                derived_from=submitted.derived_from,
                rerun_of=submitted.rerun_of,
                inputs=submitted.inputs,
            )
            for i in range(len(result.images))
        ]
        show = not self.overlay.showing
        self.candidates.add(candidates, select_first=show)
        self.panel.set_status(f"Done in {result.duration_s:.2f} s: {len(candidates)} result(s) below.")
        self._suggest_removal(result)

    def _suggest_removal(self, result: InpaintResult) -> None:
        """The classical fill smeared a hole too thick for it: say so, and offer the removal model in one click."""
        if not result.extra.get("hole_too_large"):
            return
        suggestion = suggested_removal(self.panel.models.choices())
        thickness = float(result.extra.get("hole_thickness_px", 0))
        text = (
            f"This hole is {thickness:.0f} px thick: the classical fill smears holes thicker than "
            f"{LARGE_HOLE_PX:.0f} px into streaks. A removal model fills them from what surrounds them."
        )
        if suggestion is None:
            self.message_bar.show_info(text)
            return
        name = suggestion.architecture or suggestion.label
        verb = "Use" if suggestion.installed else "Get"
        self.message_bar.show_info(text, [(f"{verb} {name}", lambda: self.panel.select_model(suggestion.reference))])

    def _on_cancelled(self, event: JobCancelled) -> None:
        if self.worker.is_task(event.job_id):
            return  # another controller's EngineTask (submit_task): its owner reports it
        self._submitted.pop(event.job_id, None)
        self.message_bar.show_info(event.message)
        self.panel.set_status("Cancelled.")

    def _on_failed(self, event: JobFailed) -> None:
        if self.worker.is_task(event.job_id):
            return
        self._submitted.pop(event.job_id, None)
        self.message_bar.show_error(event.message)
        self.panel.set_status("Failed; see the message above the image.")

    def apply_engine_settings(self) -> None:
        """Settings > Engine changed: the next job runs on this computer or on the chosen server."""
        self.worker.switch_engine(engine_factory(self.ctx.settings))
        kind = "a server" if self.ctx.settings.engine_kind == ENGINE_SERVER else "this computer"
        self.engine_status.emit(f"Engine: {kind} (from the next job)")
        self.refresh_server_models()

    def refresh_server_models(self) -> None:
        """With a server engine, its own models join the model list (asked in the background)."""
        factory = engine_factory(self.ctx.settings)
        picker = self.panel.models
        if not isinstance(factory, RemoteEngineFactory):
            picker.set_server_models([])
            return

        def ask(_state: TaskState) -> list[dict[str, Any]]:
            engine = factory()
            try:
                return list(engine.models())
            finally:
                engine.close()

        # A server that does not answer is said when a job runs (or by Settings > Test); the list stays.
        self.ctx.runner.start("asking the server for its models", ask, picker.set_server_models, log.info)

    def _apply_watchdog_settings(self) -> None:
        """Settings "generation/stall_timeout_s" and "generation/abandon_grace_s", when set (seconds)."""
        settings = self.ctx.settings
        if settings.stall_timeout_s is not None:
            self.worker.stall_timeout_s = settings.stall_timeout_s
        if settings.abandon_grace_s is not None:
            self.worker.abandon_grace_s = settings.abandon_grace_s

    def _on_stalled(self, job_id: int, seconds: float) -> None:
        """The watchdog saw no progress for a long time: say so and offer Cancel (the window stays usable)."""
        self._stall_message = (
            f"The generation has made no progress for {_duration(seconds)}; it may be stuck. "
            "Cancel it to free the engine for the next job."
        )
        self.message_bar.show_error(self._stall_message, [("Cancel", lambda: self._cancel_stalled(job_id))])
        self.panel.set_status("No progress: it may be stuck (Esc cancels).")

    def _cancel_stalled(self, job_id: int) -> None:
        if self.worker.current_id == job_id:
            self.worker.cancel_current()
            self.panel.set_status("Cancelling…")

    def _on_resumed(self, _job_id: int) -> None:
        if self._stall_message is not None and self.message_bar.text() == self._stall_message:
            self.message_bar.dismiss()
        self._stall_message = None
        self.panel.set_status("Running again.")

    def _update_running(self, *_args: object) -> None:
        running = self.worker.running_work_id is not None
        queued = len(self.worker.queued_work_ids())
        self.panel.set_running(running, queued)
        self.cancel_action.setEnabled(running or queued > 0 or self.overlay.showing)
        self.cancel_all_action.setEnabled(running or queued > 0)

    def _on_engine_loading(self) -> None:
        self.panel.set_status("Loading engine…")
        self.engine_status.emit("Engine: loading…")

    def _on_engine_ready(self, info: EngineInfo) -> None:
        self.engine_status.emit(f"Engine: {info.device_name}")
        if self.worker.running_work_id is None:
            self.panel.set_status("Engine ready.")

    # ---- candidates ---------------------------------------------------------------------------------
    def preview_candidate(self, candidate: Candidate | None) -> None:
        if candidate is None:
            if self.overlay.kind == "candidate":
                self.end_preview()
            return
        pixels, origin = candidate.region_pixels()
        self.overlay.show_image(
            pixels,
            origin,
            f"Preview: {candidate.title}{_seed_note(candidate)} (Enter: apply)",
            kind="candidate",
            key=candidate.key,
        )
        self.apply_action.setEnabled(True)
        self._update_running()

    def apply_selected(self) -> None:
        candidate = self.candidates.selected()
        if candidate is not None:
            self.apply(candidate)

    def apply(self, candidate: Candidate) -> HistoryEntry | None:
        """Add the candidate as a new layer named after the prompt (undoable) and record it in history."""
        self.canvas.finish_gesture()
        doc = self.document
        pixels = candidate.pixels
        if pixels.shape[:2] != (doc.height, doc.width):
            raise BadInputError(
                f"This result was made for a {pixels.shape[1]}×{pixels.shape[0]} image, but the image is now "
                f"{doc.width}×{doc.height}; generate again."
            )
        job = candidate.result.job
        layer = Layer(
            name=doc.unique_name(candidate.title[:LAYER_NAME_CHARS]),
            pixels=result_layer_pixels(pixels, candidate.image),
            kind="result",
            metadata={"prompt": job.prompt, "seed": candidate.seed, "model": job.model},
        )
        head = self.recorder.history.head
        reference = head.snapshot if head is not None else None
        base = reference.layers[0].pixels if reference is not None and reference.layers else None
        inputs = {
            "image": TiledArray.capture(_rgba(candidate.image), base),
            "mask": TiledArray.capture(candidate.mask, reference.mask if reference is not None else None),
        }
        annotation = Annotation(
            kind="classic" if job.is_classical else "generate",
            title=_entry_title(candidate),
            params=candidate.record().to_dict(),
            duration_s=candidate.result.duration_s,
            derived_from=candidate.derived_from,
            layer=layer,
        )
        for name, pixels in candidate.inputs.items():  # the reference image: what replay needs to re-create it
            inputs[name] = TiledArray.capture(pixels)
        # One undo step: the new layer, and the mask cleared (it did its job, and its overlay would hide the
        # result being judged) unless the user keeps masks after Apply (Mask menu).
        text = f"Apply “{layer.name}”"
        parts = [AddLayerCommand(doc, layer, text=text)]
        if not self.ctx.settings.keep_mask_after_apply:
            parts.append(mask_change(doc, np.zeros_like(doc.mask), "Clear the mask"))
        entry = self.recorder.push(StepCommand(text, parts), annotation)
        if entry is not None:
            entry.inputs = inputs
        self.candidates.mark_applied(candidate, entry.id if entry else None)
        self.end_preview()
        return entry

    def _refresh_applied_marks(self) -> None:
        """An applied candidate keeps its tick only while its entry is part of what the document shows."""
        statuses = self.recorder.history.statuses()
        self.candidates.refresh_applied(lambda entry_id: statuses.get(entry_id) in ("current", "active"))

    def more_like_this(self, candidate: Candidate) -> int:
        """Run the candidate's job again on the same input with new seeds."""
        job = candidate.result.job.replace(seed=None)
        return self.submit(
            job,
            candidate.image,
            candidate.mask,
            derived_from=candidate.derived_from,
            rerun_of=candidate.rerun_of,
            inputs=candidate.inputs,
        )

    def _on_discarded(self, candidate: Candidate) -> None:
        if self.overlay.kind == "candidate" and self.overlay.key == candidate.key:
            self.end_preview()

    # ---- history ------------------------------------------------------------------------------------
    def preview_history(self, entry_id: int | None) -> None:
        if entry_id is None:
            if self.overlay.kind == "history":
                self.end_preview()
            return
        entry = self.recorder.history.entries.get(entry_id)
        if entry is None or entry.snapshot is None:
            return
        if entry.id == self.recorder.history.head_id:
            self.overlay.clear()  # the canvas already shows it
        else:
            self.overlay.show_image(
                entry.snapshot.composite(),
                (0, 0),
                f"Showing #{entry.id} as it was ({entry.kind_label}) · Esc or 'Back to current' to return",
                kind="history",
                key=entry.id,
                outline=False,
            )
        self.apply_action.setEnabled(False)
        self._update_running()

    def use_parameters(self, entry_id: int) -> InpaintJob:
        entry = self.recorder.history[entry_id]
        job = self._entry_record(entry).submitted_job
        self.panel.load_job(job)
        reference = entry.inputs.get(REFERENCE_INPUT)
        if reference is not None:  # the reference image is pixels, kept with the entry's inputs
            self.panel.addons.set_reference(reference.to_array(), f"the reference of #{entry.id}")
        self.message_bar.show_info(f"Loaded the parameters of #{entry.id}; the seed {job.seed} is locked.")
        return job

    def offer_parameters(self, text: str) -> None:
        """An opened image carries A1111-style parameters: offer to load them into Generate."""
        summary = parameters_summary(text)
        self.message_bar.show_info(
            f"This image has generation parameters ({summary}).",
            [("Use these parameters", lambda: self.ctx.guarded(self.load_parameters, text))],
        )

    def load_parameters(self, text: str) -> InpaintJob:
        """Load A1111-style parameters into Generate; values this app does not have are left as they were."""
        overrides = job_overrides_from_parameters(parse_parameters(text))
        sampler = overrides.get("scheduler")
        if sampler is not None and sampler not in scheduler_names():
            overrides.pop("scheduler")
        missing = self._find_addons(overrides)
        job = self.panel.job().replace(**overrides)
        self.panel.load_job(job, lock_seed="seed" in overrides or self.panel.seed_locked)
        note = (
            f" The sampler '{sampler}' is not available, so it was left as it was."
            if sampler and "scheduler" not in overrides
            else ""
        )
        if missing:
            note += f" Not found in your LoRA and embeddings folders: {', '.join(missing)}."
        self.message_bar.show_info(f"Loaded the image's parameters into Generate.{note}")
        return job

    def _find_addons(self, overrides: dict[str, Any]) -> list[str]:
        """Parameters name LoRAs and embeddings (A1111's <lora:name:weight>): find their files in the lists the
        panel shows; hub references are kept as they are. Returns the names not found (left out)."""
        missing: list[str] = []
        for key, choices in (
            ("loras", self.panel.addons.lora_choices()),
            ("embeddings", self.panel.addons.embedding_choices()),
        ):
            if key not in overrides:
                continue
            by_name = {choice.name: choice.reference for choice in choices}
            found = []
            for name, value in overrides[key]:
                reference = by_name.get(name) or (name if addon_files.HUB_REFERENCE.match(name) else None)
                if reference is None:
                    missing.append(name)
                else:
                    found.append((reference, value))
            overrides[key] = tuple(found)
        return missing

    def rerun(self, entry_id: int) -> int:
        """Run an entry's job again with a new seed, on the same input it had."""
        entry = self.recorder.history[entry_id]
        job = self._entry_record(entry).submitted_job.replace(seed=None)
        image_tiles, mask_tiles = entry.inputs.get("image"), entry.inputs.get("mask")
        if image_tiles is None or mask_tiles is None:
            raise BadInputError(f"Entry #{entry.id} has no recorded input; use its parameters on the current image.")
        named = {name: tiles.to_array() for name, tiles in entry.inputs.items() if name not in ("image", "mask")}
        return self.submit(
            job,
            image_tiles.to_array(),
            mask_tiles.to_array(),
            derived_from=entry.derived_from,
            rerun_of=entry.id,
            inputs=named,
        )

    def branch_from(self, entry_id: int) -> None:
        self.end_preview()
        if not self.recorder.branch_from(entry_id):
            raise BadInputError(f"Entry #{entry_id} has no saved state to branch from.")
        self.message_bar.show_info(
            f"Continuing from #{entry_id}; the later entries stay in the history as a side branch."
        )

    @staticmethod
    def _entry_record(entry: HistoryEntry) -> GenerationRecord:
        if entry.kind not in ("generate", "classic"):
            raise BadInputError(f"Entry #{entry.id} is not a generation; choose a generation entry.")
        try:
            return GenerationRecord.from_dict(entry.params)  # checked like every other setting from a file
        except BadInputError as exc:
            raise BadInputError(f"Entry #{entry.id}: {exc}") from exc

    # ---- previews -----------------------------------------------------------------------------------
    def end_preview(self) -> None:
        kind = self.overlay.kind
        self.overlay.clear()
        self.apply_action.setEnabled(False)
        if kind == "candidate":
            self.candidates.clear_selection()
        elif kind == "history":
            self.history_panel.clear_selection()
        self._update_running()

    def _on_document_changed(self, *_args: Any) -> None:
        # A past state shown over a document that just changed would mislead: go back to the live view.
        if self.overlay.kind == "history":
            self.end_preview()

    def _on_document_reset(self) -> None:
        self._document_serial += 1
        self.end_preview()
        self.candidates.clear()

    # ---- downloads ----------------------------------------------------------------------------------
    def start_download(self, repo_id: str) -> None:
        if self.downloader.start(repo_id):
            self.panel.models.set_download_state(repo_id, 0, 0, "Starting…")

    def _on_download_progress(self, progress: DownloadProgress) -> None:
        gb = 1e9
        text = (
            f"{progress.done_bytes / gb:.2f} / {progress.total_bytes / gb:.2f} GB"
            if progress.total_bytes
            else f"{progress.files_done}/{progress.files_total} files"
        )
        self.panel.models.set_download_state(progress.repo_id, progress.done_bytes, progress.total_bytes, text)

    def _on_download_finished(self, repo_id: str, _path: str) -> None:
        self.panel.models.set_download_state(None)
        self.panel.models.refresh_installed()
        self.message_bar.show_info(f"{repo_id} is downloaded and ready to use.")

    def _on_download_failed(self, _repo_id: str, message: str) -> None:
        self.panel.models.set_download_state(None)
        self.message_bar.show_error(message)

    def _on_download_cancelled(self, repo_id: str) -> None:
        self.panel.models.set_download_state(None)
        self.message_bar.show_info(f"The download of {repo_id} was cancelled; it resumes where it stopped next time.")

    def _layer_pixels(self, layer_id: str) -> np.ndarray | None:
        try:
            return self.document.layer(layer_id).pixels.copy()
        except KeyError:
            return None

    def start_addon_download(self, reference: str) -> None:
        """Download an add-on the panel offered (its size and licence were shown beside the button)."""
        if self.addon_downloader.start(reference):
            self.message_bar.show_info(
                f"Downloading {reference}…", [("Cancel", lambda: self.addon_downloader.cancel(reference))]
            )

    def _on_addon_download_progress(self, progress: DownloadProgress) -> None:
        if progress.total_bytes:
            self.panel.set_status(
                f"Downloading {addon_name(progress.repo_id)}: "
                f"{progress.done_bytes / 1e9:.2f} / {progress.total_bytes / 1e9:.2f} GB"
            )

    def _on_addon_download_finished(self, reference: str, _path: str) -> None:
        self.panel.addons.installed_changed()
        self.panel.set_status("")
        self.message_bar.show_info(f"{reference} is downloaded and ready to use.")

    def _on_download_failed_message(self, _reference: str, message: str) -> None:
        self.panel.set_status("")
        self.message_bar.show_error(message)

    def _on_download_cancelled_message(self, reference: str) -> None:
        self.panel.set_status("")
        self.message_bar.show_info(f"The download of {reference} was cancelled; it resumes where it stopped next time.")

    # ---- lifetime -----------------------------------------------------------------------------------
    def window_shown(self) -> None:
        """The window appeared for the first time: load the engine shortly, before the first job needs it."""
        if self._shown_once:
            return
        self._shown_once = True
        # Headless (tests, scripts): no one waits for the first job, so torch is not loaded speculatively.
        if self._warm_up_delay_ms is None or QGuiApplication.platformName() == "offscreen":
            return
        QTimer.singleShot(self._warm_up_delay_ms, self.worker.warm_up)

    def shutdown(self) -> bool:
        """Cancel downloads and jobs and stop the worker (bounded wait); safe to call more than once."""
        self.downloader.cancel_all()
        self.addon_downloader.cancel_all()
        self.end_preview()
        if not self.owns_worker:
            self.worker.cancel_all()
            return True
        return self.worker.shutdown(SHUTDOWN_TIMEOUT_S)


def _entry_title(candidate: Candidate) -> str:
    """A generation is named by its prompt; a fill (no prompt) by what made it and the size of what it filled."""
    network = candidate.result.extra.get("removal_network")
    if not candidate.result.job.is_classical and not network:
        return candidate.title
    box = masks.bbox(candidate.mask)
    if box is None:
        return "fill"
    left, top, right, bottom = box
    size = f"{right - left}×{bottom - top} px area"
    return f"{network} removal of a {size}" if network else size


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


def parameters_summary(text: str) -> str:
    """A short description of a parameters text: the prompt's start and the main settings."""
    parsed = parse_parameters(text)
    parts = []
    prompt = parsed.get("prompt", "").strip().splitlines()
    if prompt:
        first = prompt[0]
        parts.append(f"“{first[:40]}…”" if len(first) > 40 else f"“{first}”")
    for key in ("Steps", "Sampler", "Seed"):
        if parsed.get(key):
            parts.append(f"{key.lower()} {parsed[key]}")
    return ", ".join(parts) or "no prompt"


def _seed_note(candidate: Candidate) -> str:
    return "" if candidate.record().seed_used is None else f" · seed {candidate.seed}"


def _rgba(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 4:
        return image
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
