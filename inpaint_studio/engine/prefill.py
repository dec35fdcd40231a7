"""Pre-fill: plausible colours in an empty area before a diffusion model repaints it (outpainting's context).

The diffusers outpainting guide and Krita AI Diffusion both fill new canvas before the inpainting model sees
it: a model that starts from black (or, at strength < 1, keeps part of what is there) paints a dark, flat or
seamed border. The fill only has to continue the colours and large shapes at the image's edge; the model
then draws the content.

This module is the seam between outpainting and whatever can fill a hole. `prefill(image, mask, method)`
looks the method up in a registry:

* "classic" (= "classic:telea"), "classic:ns": the classical fill (engine/classical.py), a few tenths of a
  second for a 512 px border, working region by region on photos of any size;
* "none": leave the area as it is (transparent / black);
* "lama", "mat", "migan" or a removal model file: the removal network (engine/removal.py `fill_masked`),
  loaded through `context.engine` (the generation Engine, in the engine thread): context rather than a smear.

Other methods plug in with `register_prefill(name, fn)`: `fn(image_rgb, mask, context)` returns the filled RGB
image.

`PrefillTask` runs a pre-fill as an `EngineTask` (engine/tasks.py) in the generation queue, so it takes its
turn with the jobs, reports progress and can be cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inpaint_studio.core import masks
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import REMOVAL_FILE_SUFFIXES, REMOVAL_MODELS, ClassicalMethod
from inpaint_studio.engine.classical import classical_fill
from inpaint_studio.engine.events import CancelToken, JobProgress
from inpaint_studio.engine.removal import fill_masked
from inpaint_studio.engine.tasks import TaskContext

NONE = "none"
CLASSIC = "classic"


@dataclass(frozen=True)
class PrefillContext:
    """What a pre-fill method may use besides the pixels."""

    cancel: CancelToken
    progress: Callable[[int, int], None]
    engine: Any = None  # the generation Engine when run in the engine thread (removal models load through it)


PrefillMethod = Callable[[np.ndarray, np.ndarray, PrefillContext], np.ndarray]


def _classical(method: ClassicalMethod) -> PrefillMethod:
    def fill(rgb: np.ndarray, mask: np.ndarray, context: PrefillContext) -> np.ndarray:
        return classical_fill(rgb, mask, method, cancel=context.cancel, progress=context.progress)

    return fill


def _removal(reference: str) -> PrefillMethod:
    def fill(rgb: np.ndarray, mask: np.ndarray, context: PrefillContext) -> np.ndarray:
        if context.engine is None:
            raise BadInputError(f"The pre-fill '{reference}' needs the generation engine; run it as an engine task.")
        if not hasattr(context.engine, "removal"):  # a server's client (engine/remote.py) has no removal networks
            raise BadInputError(
                f"The pre-fill '{reference}' runs on this computer's engine, not on a server; "
                "use the classical pre-fill, or switch Settings > Engine to This computer."
            )
        context.progress(0, 1)
        filled = fill_masked(reference, rgb, mask, context.engine)
        context.progress(1, 1)
        return filled

    return fill


_METHODS: dict[str, PrefillMethod] = {
    CLASSIC: _classical(ClassicalMethod.TELEA),  # smooth, continues the edge's colours into a large area
    f"{CLASSIC}:telea": _classical(ClassicalMethod.TELEA),
    f"{CLASSIC}:ns": _classical(ClassicalMethod.NAVIER_STOKES),
}
_LABELS: dict[str, str] = {
    CLASSIC: "Classical fill",
    f"{CLASSIC}:telea": "Classical fill (Telea)",
    f"{CLASSIC}:ns": "Classical fill (Navier-Stokes)",
    NONE: "Leave it empty",
}


for _name, _label in zip(REMOVAL_MODELS, ("LaMa", "MAT", "MI-GAN"), strict=True):
    _METHODS[_name] = _removal(_name)
    _LABELS[_name] = f"{_label} (removal network)"


def register_prefill(name: str, method: PrefillMethod, label: str | None = None) -> None:
    """Make a pre-fill method available by name (the seam for removal models: "lama", "migan", ...)."""
    if not name or name == NONE:
        raise ValueError(f"{name!r} cannot name a pre-fill method")
    _METHODS[name] = method
    _LABELS[name] = label or name


def prefill_methods() -> tuple[str, ...]:
    """The names `prefill` accepts, "none" last."""
    return (*_METHODS, NONE)


def prefill_label(name: str) -> str:
    return _LABELS.get(name, name)


def check_prefill_method(name: str) -> str:
    name = name.strip()
    if name.lower().endswith(REMOVAL_FILE_SUFFIXES):  # a removal model file (checked when it is loaded)
        return name
    if name != NONE and name not in _METHODS:
        raise BadInputError(f"The pre-fill '{name}' is unknown; use one of: {', '.join(prefill_methods())}.")
    return name


def prefill(
    image: np.ndarray,
    mask: np.ndarray,
    method: str = CLASSIC,
    *,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Any = None,
) -> np.ndarray:
    """The image with its masked pixels (mask >= MASK_THRESHOLD) filled by `method`; the rest bit-identical.

    `image` is RGB or RGBA uint8; an RGBA image comes back RGBA with the filled pixels opaque.
    """
    method = check_prefill_method(method)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise BadInputError(f"A pre-fill needs RGB or RGBA pixels, got {array.shape} {array.dtype}.")
    hole = masks.is_masked(mask)
    if hole.shape != array.shape[:2]:
        raise BadInputError("The pre-fill mask and the image differ in size; use a mask of the image's size.")
    out = array.copy()
    if method == NONE or not hole.any():
        return out
    context = PrefillContext(cancel or CancelToken(), progress or (lambda done, total: None), engine)
    rgb = np.ascontiguousarray(array[..., :3])
    binary = np.where(hole, np.uint8(255), np.uint8(0))
    fill = _METHODS.get(method) or _removal(method)  # a removal model file (check_prefill_method)
    filled = fill(rgb, binary, context)
    out[..., :3][hole] = filled[hole]
    if out.shape[2] == 4:
        out[..., 3][hole] = 255
    return out


@dataclass(frozen=True, eq=False)
class PrefillTask:
    """A pre-fill as engine work: returns the filled image (see `prefill`)."""

    image: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    method: str = CLASSIC

    @property
    def title(self) -> str:
        return f"The pre-fill ({prefill_label(self.method).lower()})"

    @property
    def needs_torch(self) -> bool:
        """The classical fill (and none) run at once, without waiting for torch to import; a network does not."""
        return not (self.method == NONE or self.method.split(":")[0] == CLASSIC)

    def run(self, context: TaskContext) -> np.ndarray:
        def progress(done: int, total: int) -> None:
            context.emit(JobProgress(context.job_id, done, max(total, 1), 0))

        return prefill(
            self.image,
            self.mask,
            self.method,
            cancel=context.cancel,
            progress=progress,
            engine=context.workspace.engine,
        )
