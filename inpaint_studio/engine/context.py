"""What one run of a job carries from the runner to the code that computes it, and what comes back.

`RunContext` replaces the argument bundle (job, model, prepared input, chain inputs, event sink, cancel
token, ...) that Engine.run handed on call by call: the runner builds it once the job is checked and its
model resolved, and the diffusion job and the classical fill only read it. The variant seeds are computed
here once, so the seeds that drive the noise and the seeds the result reports cannot drift apart.

Its own module, not a part of runner.py or region.py: diffusion.py needs the type without importing the
runner (which imports diffusion.py: that was an import cycle), and region.py stays pure pixel work with no
knowledge of events or models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import CancelToken, EventSink, LatentHandoff
from inpaint_studio.engine.models import ModelInfo
from inpaint_studio.engine.region import PreparedInput


@dataclass(frozen=True)
class RunContext:
    """One resolved, validated job on its way through the engine (see module docstring)."""

    job: InpaintJob  # resolved (a concrete seed) and validated
    info: ModelInfo  # what job.model resolved to
    prepared: PreparedInput | None  # None for text-to-image
    emit: EventSink
    cancel: CancelToken
    job_id: int = 0
    control_image: Image.Image | np.ndarray | None = None  # a ControlNet condition given by the caller
    reference_image: Image.Image | np.ndarray | None = None  # the IP-Adapter's reference (input "reference")
    handoff: LatentHandoff | None = None  # the previous chain step's latents
    preview_every: int = 0  # attach a rough preview to every N-th progress event (0: none)
    seeds: tuple[int, ...] = field(init=False)  # one per variant, from job.variant_seeds()

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.job.variant_seeds()))

    def with_reference(self, image: Image.Image | np.ndarray | None) -> RunContext:
        """This context with the IP-Adapter's reference image (the input named "reference")."""
        return self if image is None else dataclasses.replace(self, reference_image=image)


@dataclass
class RunOutcome:
    """What a diffusion or classical run gives back; the runner adds the timing and the common fields."""

    images: list[Image.Image]
    device: str
    extra: dict[str, Any]  # plain data only: history stores it
    handoff: LatentHandoff | None = None  # for the first image, when it is exactly the decoded latents
