"""Typed events the engine emits while it runs a job, and the cancel token.

Events are plain frozen dataclasses so a GUI worker can forward them across threads unchanged
(for example as the payload of one Qt signal). The engine never imports Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inpaint_studio.core.errors import CancelledError, InpaintStudioError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.record import GenerationRecord, plain_data

if TYPE_CHECKING:
    from PIL import Image


class CancelToken:
    """Cooperative cancellation shared between the caller and the running job (thread safe)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


@dataclass(frozen=True)
class LatentHandoff:
    """The latents behind a result image, for a next step that can take them without decode/encode.

    Only attached when the image is exactly the decoded latents (no crop, resize or composite), so a
    step that uses them starts from what the image shows.
    """

    latents: Any  # torch.Tensor 1xCxhxw on the CPU
    latent_space: dict[str, Any]  # the VAE's latent-space signature (decode.latent_space)
    size: tuple[int, int]  # (width, height) of the image the latents decode to
    rgb: Any  # numpy HxWx3 uint8: that image


@dataclass(frozen=True)
class InpaintResult:
    """The outcome of one job: one image per variant, at the size the job asked for."""

    images: list[Image.Image]
    job: InpaintJob  # resolved: holds the concrete seed
    seeds: list[int]
    model: dict[str, Any]  # description of the model used (reference, family, path, revision where known)
    device: str
    duration_s: float
    region: tuple[int, int, int, int]  # (left, top, right, bottom) of the area the model worked on
    extra: dict[str, Any] = field(default_factory=dict)  # plain data only: history stores it
    handoff: LatentHandoff | None = field(default=None, repr=False, compare=False)  # for the first image

    def record(self, variant: int = 0, *, rerun_of: int | None = None) -> GenerationRecord:
        """The record of one variant's image: its own job (seed, variants=1) and how it was made."""
        device_name = self.extra.get("device_name")
        return GenerationRecord(
            job=self.job.replace(seed=self.seeds[variant], variants=1),
            model=self.model,
            device=self.device,
            device_name=str(device_name) if device_name else ("CPU" if self.device == "cpu" else self.device),
            variant=variant,
            batch_size=self.job.variants,
            region=self.region,
            duration_s=self.duration_s,
            extra=plain_data(self.extra),
            rerun_of=rerun_of,
        )


@dataclass(frozen=True)
class JobStarted:
    job_id: int
    job: InpaintJob
    total_steps: int


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    step: int  # steps done so far, over all variants
    total: int
    variant: int  # 0-based index of the variant being computed
    preview: Image.Image | None = None
    variants: int = 1  # how many variants the job computes (total = variants x steps per variant)

    @property
    def variant_total(self) -> int:
        """Steps of one variant (denoising calls: a few samplers make one more than the job's steps)."""
        return max(1, self.total // max(1, self.variants))

    @property
    def variant_step(self) -> int:
        """Steps done in the current variant."""
        return min(self.variant_total, max(0, self.step - self.variant * self.variant_total))

    def label(self, separator: str = " · ") -> str:
        """What a person reads: "Variant 2 of 3 · step 4 of 30", or "Step 4 of 30" for a single result."""
        steps = f"step {self.variant_step} of {self.variant_total}"
        if self.variants > 1:
            return f"Variant {self.variant + 1} of {self.variants}{separator}{steps}"
        return steps[0].upper() + steps[1:]


@dataclass(frozen=True)
class JobFinished:
    job_id: int
    result: InpaintResult


@dataclass(frozen=True)
class JobCancelled:
    job_id: int
    message: str = "Cancelled by the user; nothing was changed."


@dataclass(frozen=True)
class JobFailed:
    job_id: int
    message: str  # one user-facing sentence
    error: InpaintStudioError | None = None


@dataclass(frozen=True)
class ChainStepFinished:
    """A chain step finished (after its JobFinished); `index` is the step's position, from 0."""

    index: int
    result: InpaintResult


EngineEvent = JobStarted | JobProgress | JobFinished | JobCancelled | JobFailed | ChainStepFinished
EventSink = Callable[[EngineEvent], None]
