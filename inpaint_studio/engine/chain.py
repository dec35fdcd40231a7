"""Chains: a list of jobs where each step's output image is the next step's input.

Typical chains (docs/recipes.md): text-to-image -> inpaint; inpaint -> image-to-image (a refinement or a
style model); inpaint -> inpaint. Steps run through Engine.run, so every step keeps its guarantees (size,
untouched pixels outside its mask, seeds). Steps on the same checkpoint reuse the loaded modules (from_pipe
variants in the PipelineManager); a step on another checkpoint releases the previous one first. When a step's
image is exactly its decoded latents and the next step is an image-to-image on a VAE with the same latent
space, the latents are handed over instead of being encoded again.

A chain is plain data: `Chain.to_dict()` is the versioned recipe format (docs/recipes.md) and, once run,
`ChainResult.record()` is the same format with every seed fixed and each step's outcome attached. Running a
record again with the same input images gives identical pixels on the same device.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from inpaint_studio.core.errors import BadInputError, CancelledError
from inpaint_studio.core.jobspec import REFERENCE_INPUT, InpaintJob, Task
from inpaint_studio.engine.events import CancelToken, ChainStepFinished, EventSink, InpaintResult
from inpaint_studio.engine.schedulers import DEFAULT, SCHEDULERS

if TYPE_CHECKING:
    from inpaint_studio.engine.runner import Engine

FORMAT = "inpaint-studio/chain"
VERSION = 1
IMAGE_INPUT = "image"  # the input the first step edits (absent when the chain starts from a prompt)
MASK_INPUT = "mask"  # the mask an inpainting step uses when it names none

_STEP_KEYS = {"name", "job", "mask", "control_image", "reference_image", "result"}
_TOP_KEYS = {"format", "version", "inputs", "input_digests", "defaults", "steps"}


@dataclass(frozen=True)
class ChainStep:
    """One step: a job, and the names of the chain inputs it uses besides the previous step's image."""

    job: InpaintJob
    name: str = ""
    mask: str | None = None  # an input name; None: no mask (text-to-image, whole-image img2img)
    control_image: str | None = None  # an input name for a ControlNet condition other than inpainting
    reference_image: str | None = None  # an input name: the IP-Adapter's reference image

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "mask": self.mask, "control_image": self.control_image}
        if self.reference_image is not None:
            data["reference_image"] = self.reference_image
        data["job"] = self.job.to_dict()
        return data


@dataclass(frozen=True)
class Chain:
    steps: tuple[ChainStep, ...]
    inputs: Mapping[str, str] = field(default_factory=dict)  # input name -> file (recipes; relative to it)
    input_digests: Mapping[str, str] = field(default_factory=dict)  # recorded chains: what was used

    # ---- plain data ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "inputs": dict(self.inputs),
            "steps": [step.to_dict() for step in self.steps],
        }
        if self.input_digests:
            data["input_digests"] = dict(self.input_digests)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chain:
        """Read a recipe or a record (version 1); every problem is one sentence naming the step."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise BadInputError(f"This is not a chain recipe: its 'format' must be '{FORMAT}'.")
        version = data.get("version")
        if version != VERSION:
            raise BadInputError(f"Chain recipe version {version!r} is not supported; this app reads version {VERSION}.")
        unknown = sorted(str(k) for k in set(data) - _TOP_KEYS)
        if unknown:
            raise BadInputError(f"Unknown chain recipe key(s): {', '.join(unknown)}; check the spelling.")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise BadInputError("The chain recipe's 'defaults' must be an object of job settings.")
        inputs = _names_to_text(data.get("inputs"), "inputs")
        digests = _names_to_text(data.get("input_digests"), "input_digests")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise BadInputError("The chain recipe has no steps; add at least one under 'steps'.")
        steps = []
        for index, raw in enumerate(raw_steps, 1):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("job"), Mapping):
                raise BadInputError(f"Step {index} of the chain recipe needs a 'job' object.")
            unknown = sorted(str(k) for k in set(raw) - _STEP_KEYS)
            if unknown:
                raise BadInputError(f"Step {index} has unknown key(s): {', '.join(unknown)}; check the spelling.")
            try:
                job = InpaintJob.from_dict(_merge(defaults, raw["job"]))
            except BadInputError as exc:
                raise BadInputError(f"Step {index}: {exc}") from exc
            except TypeError as exc:
                raise BadInputError(f"Step {index} has a setting of the wrong kind ({exc}).") from exc
            mask = raw.get("mask", MASK_INPUT if job.task is Task.INPAINT else None)
            control = raw.get("control_image")
            reference = raw.get("reference_image", REFERENCE_INPUT if job.ip_adapter else None)
            name = raw.get("name") or ""
            for key, value in (
                ("mask", mask),
                ("control_image", control),
                ("reference_image", reference),
                ("name", name),
            ):
                if value is not None and not isinstance(value, str):
                    raise BadInputError(f"Step {index}: '{key}' must be text (an input name), not {value!r:.40}.")
            steps.append(ChainStep(job, name, mask, control, reference))
        return cls(tuple(steps), inputs, digests)

    # ---- checks and seeds ---------------------------------------------------------------------------
    def resolved(self) -> Chain:
        """Every step with a concrete seed, fixed before the first step runs (the record is complete)."""
        steps = tuple(dataclasses.replace(s, job=s.job.resolved()) for s in self.steps)
        return dataclasses.replace(self, steps=steps)

    def problems(self, available: set[str]) -> list[str]:
        """Everything wrong with running this chain on the inputs named in `available`."""
        out = []
        for index, step in enumerate(self.steps, 1):
            label = f"Step {index}" + (f" ({step.name})" if step.name else "")
            out.extend(f"{label}: {problem}" for problem in step.job.problems())
            if not step.job.is_classical and step.job.scheduler not in (DEFAULT, *SCHEDULERS):
                names = ", ".join((DEFAULT, *SCHEDULERS))
                out.append(f"{label}: the sampler '{step.job.scheduler}' is unknown; choose one of: {names}.")
            if step.job.variants != 1:
                out.append(f"{label} asks for {step.job.variants} variants; a chain step makes one image.")
            if step.job.task is Task.TEXT2IMG and index > 1:
                out.append(f"{label} is text-to-image, which ignores the steps before it; only a first step can be.")
            if step.job.task is Task.TEXT2IMG and step.mask is not None:
                out.append(f"{label} is text-to-image, which takes no mask; remove its 'mask'.")
            if step.job.task is Task.INPAINT and step.mask is None:
                out.append(f"{label} inpaints but names no mask; give it a 'mask' input.")
            if step.job.ip_adapter and step.reference_image is None:
                out.append(
                    f"{label} uses an IP-Adapter but names no reference image; give it a 'reference_image' input."
                )
            for kind, name in (
                ("mask", step.mask),
                ("control image", step.control_image),
                ("reference image", step.reference_image),
            ):
                if name is not None and name not in available:
                    out.append(f"{label} uses the {kind} input '{name}', which the chain was not given.")
        if self.steps and self.steps[0].job.task is not Task.TEXT2IMG and IMAGE_INPUT not in available:
            out.append(f"The first step edits an image, but no '{IMAGE_INPUT}' input was given.")
        return out

    def validate(self, available: set[str]) -> Chain:
        problems = self.problems(available)
        if problems:
            raise BadInputError(" ".join(problems))
        return self


@dataclass
class ChainResult:
    chain: Chain  # resolved: concrete seeds
    steps: list[InpaintResult]  # the finished steps, in order (fewer than the chain's when cancelled)
    input_digests: dict[str, str] = field(default_factory=dict)

    @property
    def images(self) -> list[Image.Image]:
        return [result.images[0] for result in self.steps]

    @property
    def complete(self) -> bool:
        return len(self.steps) == len(self.chain.steps)

    def record(self) -> dict[str, Any]:
        """The chain as run: a recipe with fixed seeds, the input digests and each finished step's outcome.

        Plain JSON-able data (history entries and project files store it); Chain.from_dict reads it back.
        """
        data = dataclasses.replace(self.chain, input_digests=self.input_digests).to_dict()
        for step, result in zip(data["steps"], self.steps):
            step["result"] = result.record().to_dict()  # core/record.py: what made the step's image
        return data


class ChainCancelled(CancelledError):
    """The chain was cancelled; `partial` holds the steps that finished (their images are intact)."""

    def __init__(self, partial: ChainResult) -> None:
        done = len(partial.steps)
        super().__init__(f"Cancelled by the user after {done} of {len(partial.chain.steps)} chain steps.")
        self.partial = partial


def digest(image: Image.Image | np.ndarray) -> str:
    """A short fingerprint of an input's pixels, so a replay can tell whether it got the same input."""
    array = np.ascontiguousarray(np.asarray(image))
    h = hashlib.sha256(str(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()[:16]


def run_chain(
    engine: Engine,
    chain: Chain,
    inputs: Mapping[str, Image.Image | np.ndarray],
    *,
    on_event: EventSink | None = None,
    on_step: Callable[[int, InpaintResult], None] | None = None,
    cancel: CancelToken | None = None,
) -> ChainResult:
    """Run every step in order; each step's first image feeds the next step.

    Step i's engine events carry job_id i. `on_step` is called as each step finishes (the CLI writes its
    image then), so a cancel or failure later leaves the finished steps' outputs intact. Cancelling raises
    ChainCancelled with those steps; any other error propagates after the finished steps were reported.
    """
    emit = on_event or (lambda event: None)
    cancel = cancel or CancelToken()
    chain = chain.resolved().validate(set(inputs))
    result = ChainResult(chain, [], {name: digest(value) for name, value in inputs.items()})
    current = inputs.get(IMAGE_INPUT)
    handoff = None
    for index, step in enumerate(chain.steps):
        image = None if step.job.task is Task.TEXT2IMG else current
        mask = inputs[step.mask] if step.mask else None
        control = inputs[step.control_image] if step.control_image else None
        # Named input images beside image and mask: only passed when the step uses them.
        extra = (
            {"reference_image": inputs[step.reference_image]} if step.reference_image and step.job.ip_adapter else {}
        )
        try:
            cancel.raise_if_cancelled()
            finished = engine.run(
                step.job,
                image,
                mask,
                control_image=control,
                **extra,
                handoff=handoff,
                on_event=emit,
                cancel=cancel,
                job_id=index,
            )
        except CancelledError as exc:
            raise ChainCancelled(result) from exc
        result.steps.append(finished)
        emit(ChainStepFinished(index, finished))
        if on_step is not None:
            on_step(index, finished)
        current, handoff = finished.images[0], finished.handoff
    return result


def comparison_grid(
    images: list[Image.Image], labels: list[str] | None = None, height: int = 256, label_px: int = 18
) -> Image.Image:
    """One row: every image scaled to `height`, captioned (like the seed's make_image_grid, with labels)."""
    tiles = []
    for image in images:
        rgb = image.convert("RGB")
        width = max(1, round(rgb.width * height / rgb.height))
        tiles.append(rgb.resize((width, height), Image.Resampling.LANCZOS))
    grid = Image.new("RGB", (sum(t.width for t in tiles), height + (label_px if labels else 0)), "white")
    draw = ImageDraw.Draw(grid)
    x = 0
    for index, tile in enumerate(tiles):
        grid.paste(tile, (x, 0))
        if labels:
            draw.text((x + 4, height + 3), labels[index][:40], fill="black")
        x += tile.width
    return grid


def _names_to_text(value: Any, key: str) -> dict[str, str]:
    """A recipe's name -> text table ('inputs', 'input_digests'); anything else is one sentence."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise BadInputError(f"The chain recipe's '{key}' must map names to text (file names or digests).")
    return {str(k): v for k, v in value.items()}


def _merge(defaults: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """A step's job over the recipe's defaults; nested options ('mask', 'speed') merge key by key."""
    merged = dict(defaults)
    for key, value in job.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
