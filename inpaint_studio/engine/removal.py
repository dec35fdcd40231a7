"""Object removal with a network: LaMa and MAT through spandrel, MI-GAN's ONNX pipeline through onnxruntime.

A removal network fills the masked area from its surroundings, with no prompt, in one pass. The engine runs
it like the classical fill: region.py prepares the box (mask bounding box plus padding, grown and feathered
mask), the box is scaled to the network's working size (its native pixel count, as for diffusion), the
network fills the hole, the result is scaled back, colour-matched to the ring around the mask and
composited with the feathered weight (region.finish_image), so every pixel outside the feather is the
input's own. The input contracts, from each model's published code (docs/models.md has the table):

- LaMa (spandrel): RGB float [0, 1], 1x3xHxW; mask 1x1xHxW, 1 = fill; any size, a multiple of 8 (spandrel
  pads); gives RGB [0, 1] with the known pixels kept. Deterministic.
- MAT (spandrel-extra-arches): RGB float [0, 1] (spandrel maps it to [-1, 1]); mask 1 = fill (spandrel inverts
  it: MAT itself takes 1 = known); 512x512 (square multiples of 512); gives RGB [0, 1]. Its style vector z
  (512 normal numbers) is random: here it is drawn from the job's seed.
- MI-GAN's ONNX pipeline: `image` uint8 RGB 1x3xHxW, `mask` uint8 1x1xHxW with **255 = known**, 0 = fill;
  any size (the graph crops around the hole, resizes to 512 and blends back); gives `result` uint8 RGB
  1x3xHxW. Deterministic.

`fill_region` is the engine-level "fill this masked region with a removal network" step: box-sized pixels
in, box-sized pixels out, like `classical.classical_fill`. The runner uses it for removal jobs and for the
"Remove, then refine" pre-fill (`InpaintJob.prefill`); outpainting uses it as its pre-fill too.

Loading reads weights only: safetensors, torch's weights-only unpickler or a TorchScript archive's
weights (spandrel_models.read_weights), an ONNX graph (which runs no Python). torch, spandrel and
onnxruntime are imported inside the functions that run in the engine's worker thread.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image

from inpaint_studio.core import compositing, masks
from inpaint_studio.core.errors import BadInputError, ModelUnavailableError, OutOfMemoryError
from inpaint_studio.core.jobspec import CLASSIC_MODEL, PREFILL_NONE, InpaintJob
from inpaint_studio.engine import spandrel_models
from inpaint_studio.engine.classical import classical_fill
from inpaint_studio.engine.context import RunContext, RunOutcome
from inpaint_studio.engine.devices import describe_device, pick_device
from inpaint_studio.engine.events import JobProgress, JobStarted
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import ModelInfo, ModelResolver
from inpaint_studio.engine.region import PreparedInput, finish_image, working_size_for
from inpaint_studio.engine.removal_files import LAMA, MAT, MIGAN, removal_architecture

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contract:
    """How a removal network is fed (see the module docstring's table)."""

    architecture: str
    native: int  # the working size holds native x native pixels (the size it was trained at)
    multiple: int  # both sides of the working size are multiples of this
    square: bool  # works on native x native only
    seeded: bool  # its output depends on a random input: the job's seed chooses it
    # LaMa in channels_last: 9-15 % less CPU time per 512 px fill on this machine's CPU, same pixels after
    # rounding (benchmarks/bench_removal.py --variants, and an alternating A/B in docs/benchmarks.md)
    channels_last: bool = False


CONTRACTS: dict[str, Contract] = {
    LAMA: Contract(LAMA, 512, 8, square=False, seeded=False, channels_last=True),
    MAT: Contract(MAT, 512, 512, square=True, seeded=True),
    MIGAN: Contract(MIGAN, 512, 8, square=False, seeded=False),
}
MIGAN_INPUTS = {"image": 3, "mask": 1}  # name -> channels (uint8, N x C x H x W)
MIGAN_OUTPUT = "result"
_MAT_Z_DIM = 512


def contract_of(info: ModelInfo) -> Contract:
    return CONTRACTS.get(info.pipeline_class or "", CONTRACTS[LAMA])


def is_seeded(info: ModelInfo) -> bool:
    """Whether the model's output depends on the job's seed (diffusion models and MAT)."""
    if info.family is Family.CLASSIC:
        return False
    return info.family is not Family.REMOVAL or contract_of(info).seeded


def settings_used(job: InpaintJob, info: ModelInfo) -> InpaintJob:
    """The job as the classical fill or a removal network runs it, and as it is recorded: the diffusion
    settings it ignores (prompts, steps, sampler, guidance, strength, and the seed unless the network uses
    one) are put back to their defaults, so history and image parameters never show values that did nothing.
    A diffusion job is returned as it is."""
    if info.family not in (Family.CLASSIC, Family.REMOVAL):
        return job
    defaults = InpaintJob()
    return job.replace(
        prompt="",
        negative_prompt="",
        prompt_weighting=False,
        strength=defaults.strength,
        guidance_scale=defaults.guidance_scale,
        steps=defaults.steps,
        scheduler=defaults.scheduler,
        seed=job.seed if is_seeded(info) else 0,
    )


# ---- networks ---------------------------------------------------------------------------------------------


class RemovalNetwork(Protocol):
    """A loaded removal network: working-size RGB and hole in, working-size RGB out (uint8)."""

    contract: Contract
    device: str

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray: ...


class SpandrelNetwork:
    """LaMa or MAT as a spandrel MaskedImageModelDescriptor."""

    def __init__(self, descriptor: Any, contract: Contract, device: str) -> None:
        self.descriptor, self.contract, self.device = descriptor, contract, device

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        import torch

        image = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
        mask = torch.from_numpy((hole >= masks.MASK_THRESHOLD).astype(np.float32))[None, None]
        if self.contract.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            mask = mask.contiguous(memory_format=torch.channels_last)
        devices = [self.device] if self.device.startswith("cuda") else []
        # MAT is random twice over: its style vector z (drawn from numpy's global generator when it is built)
        # and a dropout it applies at inference too (torch's global generator). Both come from the job's seed
        # here, inside fork_rng so the global generator is left as it was: the fill is reproducible.
        with torch.inference_mode(), torch.random.fork_rng(devices=devices, enabled=self.contract.seeded):
            if self.contract.seeded:
                torch.manual_seed(seed)
                z = np.random.default_rng(seed).standard_normal((1, _MAT_Z_DIM))
                self.descriptor.model.z = torch.from_numpy(z).to(self.device)
            out = self.descriptor(image.to(self.device), mask.to(self.device))
            out = out[0].clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0)
            return out.cpu().numpy()


class OnnxMiGan:
    """MI-GAN's ONNX pipeline (its own pre/post-processing inside the graph)."""

    def __init__(self, session: Any, device: str) -> None:
        self.session, self.device, self.contract = session, device, CONTRACTS[MIGAN]

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        image = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        known = np.where(hole >= masks.MASK_THRESHOLD, 0, 255).astype(np.uint8)[None, None]  # 255 = keep
        (result,) = self.session.run([MIGAN_OUTPUT], {"image": image, "mask": known})
        return np.ascontiguousarray(np.asarray(result)[0].transpose(1, 2, 0))


def load_network(info: ModelInfo, device: str) -> RemovalNetwork:
    """Load the removal network `info` names (weights only; see the module docstring) on `device`."""
    if info.path is None:
        raise ModelUnavailableError(
            f"{info.name} has no file to load; choose lama, mat, migan or a removal model file."
        )
    if not info.path.is_file():
        raise ModelUnavailableError(f"The removal model file {info.path} is missing; download it or add it again.")
    if info.path.suffix.lower() == ".onnx":
        return _load_onnx(info.path, device)
    return _load_spandrel(info, device)


def _load_spandrel(info: ModelInfo, device: str) -> RemovalNetwork:
    if info.pipeline_class == MAT:
        try:
            import spandrel_extra_arches  # noqa: F401
        except ImportError as exc:
            raise ModelUnavailableError(
                f"MAT needs spandrel-extra-arches, which is not installed; {spandrel_models.INSTALL_HINT}."
            ) from exc
    descriptor = spandrel_models.load_image_model(info.path, "removal", device)  # type: ignore[arg-type]
    architecture = descriptor.architecture.name
    if architecture not in CONTRACTS:
        raise ModelUnavailableError(
            f"{info.path.name} holds a {architecture} network, which this app does not run; choose LaMa or MAT weights."  # type: ignore[union-attr]
        )
    contract = CONTRACTS[architecture]
    if contract.channels_last:
        import torch

        descriptor.model.to(memory_format=torch.channels_last)
    return SpandrelNetwork(descriptor, contract, device)


def _load_onnx(path: Path, device: str) -> RemovalNetwork:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelUnavailableError(
            "MI-GAN needs onnxruntime, which is not installed; reinstall Inpaint Studio (pip install inpaint-studio)."
        ) from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise to the user
    # No spin-waiting between operators: on a 2-core laptop the spinning threads took the CPU from the window
    # and from each other (bench_removal.py: 0.66-0.71 s of CPU per 512 px run without, 0.80-0.94 s with).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern (one block planned for every intermediate result): half the peak memory, 718 -> 365 MB
    # for MI-GAN at 512 px, for the same CPU time within the noise (0.67-0.79 s against 0.67-0.84 s).
    options.enable_mem_pattern = False
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise ModelUnavailableError(
            f"{path.name} is not a readable ONNX model ({str(exc).strip()[:100]}); download it again."
        ) from exc
    _check_migan_graph(session, path)
    return OnnxMiGan(session, device if providers[0].startswith("CUDA") else "cpu")


def _check_migan_graph(session: Any, path: Path) -> None:
    """MI-GAN's pipeline takes uint8 `image` (N x 3 x H x W) and `mask` (N x 1 x H x W), gives uint8 `result`."""
    inputs = {item.name: item for item in session.get_inputs()}
    outputs = {item.name: item for item in session.get_outputs()}

    def fits(item: Any, channels: int) -> bool:
        shape = item.shape
        fixed = len(shape) == 4 and (shape[1] == channels or not isinstance(shape[1], int))  # a name: dynamic
        return item.type == "tensor(uint8)" and fixed

    ok = set(inputs) == set(MIGAN_INPUTS) and MIGAN_OUTPUT in outputs
    ok = ok and all(fits(inputs[name], channels) for name, channels in MIGAN_INPUTS.items())
    ok = ok and fits(outputs[MIGAN_OUTPUT], 3)
    if not ok:
        found = ", ".join(f"{i.name} {i.type}" for i in session.get_inputs())
        raise ModelUnavailableError(
            f"{path.name} is an ONNX model with other inputs ({found[:120]}) than MI-GAN's pipeline (uint8 image "
            "and mask, giving a uint8 result); choose migan_pipeline_v2.onnx or another MI-GAN pipeline export."
        )


class RemovalModels:
    """Keeps one removal network loaded and reuses it while the same file and device are asked for.

    Another network (or a changed file) releases the loaded one first. Thread safe like PipelineManager; it
    lives beside the diffusion pipeline (a "Remove, then refine" job needs both) and is released with it.
    """

    def __init__(self, loader: Callable[[ModelInfo, str], RemovalNetwork] = load_network) -> None:
        self._lock = threading.RLock()
        self._loader = loader
        self._key: tuple[str, int, int, str] | None = None
        self._network: RemovalNetwork | None = None
        self._info: ModelInfo | None = None

    @property
    def loaded(self) -> ModelInfo | None:
        return self._info

    def get(self, info: ModelInfo, device: str) -> RemovalNetwork:
        assert info.path is not None
        try:
            stat = info.path.stat()
        except OSError as exc:
            raise ModelUnavailableError(f"The removal model file {info.path} is missing; download it again.") from exc
        key = (str(info.path), stat.st_mtime_ns, stat.st_size, device)
        with self._lock:
            if self._key != key or self._network is None:
                self.release()
                log.info("loading the removal network %s on %s", info.name, device)
                self._network = self._loader(info, device)
                self._key, self._info = key, info
            return self._network

    def release(self) -> None:
        with self._lock:
            if self._network is None:
                return
            self._network = None
            self._key = self._info = None
            gc.collect()


# ---- filling ----------------------------------------------------------------------------------------------


def working_size(contract: Contract, box_size: tuple[int, int], resolution: int | None) -> tuple[int, int]:
    """The size the network works at: its native pixel count in the box's aspect (square networks: native)."""
    if contract.square:
        side = max(contract.native, round((resolution or contract.native) / contract.multiple) * contract.multiple)
        return side, side
    return working_size_for(box_size, contract.native, resolution, contract.multiple)


def fill_region(
    network: RemovalNetwork,
    rgb: np.ndarray,
    hole: np.ndarray,
    *,
    resolution: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Fill the masked pixels of a box-sized crop with a removal network; box-sized uint8 RGB back.

    `rgb` is HxWx3 uint8 (the hole and its context), `hole` HxW uint8 (>= 128: fill). The crop is scaled
    to the network's working size (`resolution` long side, or its native pixel count), filled, and scaled
    back. The pixels outside the hole are the network's reconstruction of them: composite the result with
    the mask (region.finish_image), as for the classical fill.
    """
    height, width = hole.shape
    work = working_size(network.contract, (width, height), resolution)
    if work != (width, height):
        small = np.asarray(Image.fromarray(rgb[..., :3]).resize(work, Image.Resampling.LANCZOS))
        # Any hole pixel under a working pixel makes it a hole: a thin scratch must not vanish when scaled down.
        cover = cv2.resize((hole >= masks.MASK_THRESHOLD).astype(np.float32), work, interpolation=cv2.INTER_AREA)
        small_hole = np.where(cover > 0, 255, 0).astype(np.uint8)
    else:
        small, small_hole = np.ascontiguousarray(rgb[..., :3]), hole
    filled = network(small, small_hole, seed)
    if filled.shape[:2] != (work[1], work[0]) or filled.dtype != np.uint8:
        raise BadInputError(
            f"The removal network gave a {filled.shape} {filled.dtype} image for a {work[0]}x{work[1]} input; "
            "choose another removal model file."
        )
    if work != (width, height):
        filled = np.asarray(Image.fromarray(filled).resize((width, height), Image.Resampling.LANCZOS))
    return filled


def run_removal(context: RunContext, models: RemovalModels) -> RunOutcome:
    """A removal job: one fill per seed for a seeded network (MAT), else one; composited like every result."""
    job, prepared, info = context.job, context.prepared, context.info
    if prepared is None:
        raise BadInputError(f"{info.name} removes what is under a mask; give an image and a mask.")
    if job.prefill.strip() != PREFILL_NONE:
        raise BadInputError("A removal model fills the area itself; set the pre-fill to 'none'.")
    device = pick_device(job.device)
    seeds = list(context.seeds) if is_seeded(info) else list(context.seeds[:1])
    context.emit(JobStarted(context.job_id, job, 1 + len(seeds)))
    with _out_of_memory_as_error(device):
        network = models.get(info, device)
        context.emit(JobProgress(context.job_id, 1, 1 + len(seeds), 0))
        crop = prepared.crop(prepared.rgb)
        images = []
        for index, seed in enumerate(seeds):
            context.cancel.raise_if_cancelled()
            filled = fill_region(network, crop, prepared.mask, resolution=job.resolution, seed=seed)
            images.append(_finish(job, prepared, filled))
            context.emit(JobProgress(context.job_id, 2 + index, 1 + len(seeds), index))
    extra = {
        "removal_network": network.contract.architecture,
        "working_size": list(working_size(network.contract, _box_size(prepared), job.resolution)),
        "native_resolution": network.contract.native,
        "seeded": network.contract.seeded,
        "device_name": _device_name(network.device),
    }
    return RunOutcome(images, network.device, extra)


def prefill(context: RunContext, models: RemovalModels, resolver: ModelResolver) -> tuple[RunContext, dict[str, Any]]:
    """Remove, then refine: the context with the masked pixels of its input filled by `job.prefill`.

    Only pixels inside the (grown) mask change, so the composite after the diffusion model keeps every pixel
    outside the feather exact; inside the feather band the result blends into the pre-filled pixels, not
    into the object that was removed. Returns the new context and what to record about the pre-fill.
    """
    job, prepared = context.job, context.prepared
    if prepared is None:
        raise BadInputError("A pre-fill needs an image and a mask; set the pre-fill to 'none' for text-to-image.")
    context.cancel.raise_if_cancelled()
    crop = prepared.crop(prepared.rgb)
    reference = job.prefill.strip()
    if reference == CLASSIC_MODEL:
        filled = classical_fill(crop, prepared.mask, job.classical_method, cancel=context.cancel)
        record: dict[str, Any] = {"prefill": CLASSIC_MODEL, "classical_method": job.classical_method.value}
    else:
        info = resolve_removal(reference, resolver)
        device = pick_device(job.device)
        with _out_of_memory_as_error(device):
            network = models.get(info, device)
            filled = fill_region(network, crop, prepared.mask, seed=job.seed or 0)
        record = {"prefill": reference, "removal_network": network.contract.architecture, "model": info.to_dict()}
    context.cancel.raise_if_cancelled()
    rgb = prepared.rgb.copy()
    region = prepared.crop(rgb)
    hole = masks.is_masked(prepared.mask)
    region[hole] = filled[..., :3][hole]
    return dataclasses.replace(context, prepared=dataclasses.replace(prepared, rgb=rgb)), record


def fill_masked(reference: str, image: np.ndarray, hole: np.ndarray, engine: Any) -> np.ndarray:
    """A removal network's fill of `hole` (>= MASK_THRESHOLD) in a whole RGB image: outpainting's pre-fill.

    The network sees the hole's bounding box plus a margin of context at its working size (engine/prefill.py
    composites only the hole's pixels back). `engine` is the generation Engine: its resolver finds the model
    (a catalog name downloads only where the engine allows it) and its removal cache keeps it loaded.
    """
    box = masks.bbox(hole)
    if box is None:
        return image.copy()
    info = resolve_removal(reference, engine.models)
    height, width = hole.shape
    left, top, right, bottom = box
    margin = max(32, (right - left + bottom - top) // 8)  # context around the hole
    left, top = max(0, left - margin), max(0, top - margin)
    right, bottom = min(width, right + margin), min(height, bottom + margin)
    device = pick_device("auto")
    with _out_of_memory_as_error(device):
        network = engine.removal.get(info, device)
        filled = fill_region(network, image[top:bottom, left:right, :3], hole[top:bottom, left:right])
    out = image[..., :3].copy()
    out[top:bottom, left:right] = filled[..., :3]
    return out


def resolve_removal(reference: str, resolver: ModelResolver) -> ModelInfo:
    """A pre-fill reference -> a removal network (a diffusion model or an unknown file is one sentence)."""
    path = Path(reference).expanduser()
    if path.is_file() and removal_architecture(path) is None:
        raise ModelUnavailableError(
            f"{path.name} is not a removal model (LaMa or MAT weights, an MI-GAN ONNX pipeline); choose one, "
            "or set the pre-fill to 'none'."
        )
    info = resolver.resolve(reference)
    if info.family is not Family.REMOVAL:
        raise BadInputError(
            f"The pre-fill {Path(reference).name} is not a removal model ({info.family.value}); "
            "use classic, lama, mat, migan or a removal model file."
        )
    return info


def _finish(job: InpaintJob, prepared: PreparedInput, filled: np.ndarray) -> Image.Image:
    # Always colour-matched: the network saw a rescaled copy, and the ring around the mask is where its
    # output must agree with the photo (a no-op when it already does).
    matched = compositing.match_color(filled, prepared.crop(prepared.rgb), prepared.mask)
    return finish_image(job.replace(color_match=False), prepared, matched)


def _box_size(prepared: PreparedInput) -> tuple[int, int]:
    left, top, right, bottom = prepared.box
    return right - left, bottom - top


def _device_name(device: str) -> str:
    try:
        return describe_device(device)
    except Exception:  # onnxruntime without torch details: the device's own name is enough
        return device.upper()


class _out_of_memory_as_error:
    """Turn the out-of-memory failures of torch, onnxruntime and numpy into OutOfMemoryError (one sentence)."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not _is_out_of_memory(exc):
            return False
        traceback.clear_frames(tb)
        gc.collect()
        where = "the GPU" if self.device.startswith("cuda") else "the computer"
        raise OutOfMemoryError(
            f"{where[0].upper()}{where[1:]} ran out of memory while removing; use a smaller working resolution "
            "or a smaller mask, close other programs, then try again."
        ) from exc


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc).lower()
    return name == "OutOfMemoryError" or (
        name in ("RuntimeException", "Fail", "RuntimeError") and ("failed to allocate" in text or "bad_alloc" in text)
    )
