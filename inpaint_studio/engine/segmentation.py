"""Click-to-select: Segment Anything (SAM, SlimSAM, SAM 2) through transformers.

A segmentation model answers "which pixels belong to the object under these points / in this box". It works
in two parts of very different cost, and this module keeps them apart:

* `Segmenter.embed(image)`: the image encoder, run once per image (seconds on a CPU: SlimSAM-50 at its fixed
  1024 px input; see docs/benchmarks.md). The result, an `ImageEmbedding`, is kept and reused.
* `Segmenter.predict(embedding, prompt)`: the prompt encoder and mask decoder only (tens of milliseconds),
  run for every click, then the low-resolution mask is scaled back to the image in two stages: the
  processor's own `post_process_masks` to the model's input size (it removes SAM's padding), then OpenCV's
  bilinear resampling (the same half-pixel geometry as torch's) to the image's size, only around the object:
  on a 6000x4000 photo, scaling the whole frame with torch cost more than the decoder itself.

Supported (by `config.json`'s `model_type`): "sam" (`SamModel` + `SamProcessor`: SAM ViT-B/L/H and the
pruned SlimSAM checkpoints, which are SamModels with a narrower encoder) and "sam2" (`Sam2Model` +
`Sam2Processor`; its image processor needs torchvision, the optional `vision` extra). Weights are read from
safetensors only: a folder with pickled weights alone is refused, unread.

Coordinates: prompts are in image pixels (core/selection.py); SAM wants them in the resized image it
encoded, so they are scaled by (model width / image width, model height / image height): for SAM the
longest side becomes 1024 (the rest is padding), for SAM 2 the image is stretched to 1024 x 1024.

torch and transformers are imported inside the functions: call them from a worker thread, never the UI thread.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.resources import resource_path
from inpaint_studio.core.selection import SelectionPrompt
from inpaint_studio.engine.devices import pick_device
from inpaint_studio.engine.models import HUB_ID, download, find_in_cache
from inpaint_studio.engine.tasks import TaskContext

log = logging.getLogger(__name__)

DEFAULT_SEGMENTER = "nielsr/slimsam-50-uniform"
SUPPORTED_TYPES = ("sam", "sam2")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
EMBEDDINGS_KEPT = 2  # the current image and the one before (undo, then click again)
_TORCHVISION_HINT = (
    'install the optional vision parts with `pip install "inpaint-studio[vision]"` (torch and torchvision from '
    "the same place), or choose a SAM or SlimSAM model"
)


# ---- catalog --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterEntry:
    """A selection model the app offers for download (resources/models.json, "segmenters")."""

    id: str
    name: str
    download_mb: float
    licence: str
    note: str
    model_type: str


@lru_cache(maxsize=1)
def segmenter_catalog() -> tuple[SegmenterEntry, ...]:
    data = json.loads(resource_path("models.json").read_text(encoding="utf-8"))
    return tuple(
        SegmenterEntry(
            id=m["id"],
            name=m["name"],
            download_mb=float(m["download_mb"]),
            licence=m["licence"],
            note=m.get("note", ""),
            model_type=m["model_type"],
        )
        for m in data.get("segmenters", [])
    )


def segmenter_entry(model_id: str) -> SegmenterEntry | None:
    return next((e for e in segmenter_catalog() if e.id == model_id), None)


def segmenter_download_hint(model_id: str) -> str:
    """What to do to get a selection model that is not installed (ends with a period)."""
    entry = segmenter_entry(model_id)
    size = f" (about {entry.download_mb:g} MB, licence {entry.licence})" if entry else ""
    return (
        f"download it with `inpaint-studio download {model_id}`{size} or from the Select tool, "
        "on a computer with an internet connection."
    )


# ---- resolution -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterInfo:
    """A selection model resolved to local files."""

    reference: str
    path: Path
    model_type: str  # "sam" | "sam2"
    source: str  # "folder" | "hub"
    revision: str | None = None

    @property
    def name(self) -> str:
        entry = segmenter_entry(self.reference)
        return entry.name if entry else (self.reference if self.source == "hub" else self.path.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "path": str(self.path),
            "model_type": self.model_type,
            "source": self.source,
            "revision": self.revision,
        }


def detect_segmenter_folder(path: Path, reference: str | None = None, source: str = "folder") -> SegmenterInfo:
    """Check a folder holds a SAM-family model this app can load (configs and safetensors names only)."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelUnavailableError(
            f"The folder {path} is not a selection model (it has no config.json); choose the folder of a "
            "Segment Anything model such as SlimSAM."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{config_file} cannot be read ({exc!s:.80}); download the model again.") from exc
    model_type = str(config.get("model_type", "")) if isinstance(config, dict) else ""
    if model_type not in SUPPORTED_TYPES:
        raise ModelUnavailableError(
            f"{path.name} is a '{model_type or 'unknown'}' model, not a Segment Anything model; choose SAM, "
            "SlimSAM or SAM 2 for click-to-select."
        )
    has_safetensors = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    if not has_safetensors:
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt*")]
        why = f"holds only pickled weights ({pickled[0]})" if pickled else "has no model.safetensors"
        raise ModelUnavailableError(
            f"The selection model in {path} {why}, which this app does not load; use a copy with .safetensors "
            "weights (the catalog's models have them)."
        )
    if model_type == "sam" and not any((path / name).is_file() for name in PROCESSOR_FILES):
        raise ModelUnavailableError(
            f"The selection model in {path} has no preprocessor_config.json (how images are resized for it); "
            "download the model again."
        )
    revision = path.name if source == "hub" and path.parent.name == "snapshots" else None
    return SegmenterInfo(
        reference=reference or str(path), path=path, model_type=model_type, source=source, revision=revision
    )


def resolve_segmenter(
    reference: str, *, allow_download: bool = False, progress: Callable[..., Any] | None = None
) -> SegmenterInfo:
    """A selection model's reference (local folder or hub id) -> local files, checked before any weight is read."""
    reference = reference.strip()
    if not reference:
        raise BadInputError("No selection model is chosen; use the default, " + DEFAULT_SEGMENTER + ".")
    path = Path(reference).expanduser()
    if path.is_dir():
        return detect_segmenter_folder(path, str(path))
    if path.exists():
        raise ModelUnavailableError(
            f"{path} is a file; a selection model is a folder (config.json, model.safetensors, "
            f"preprocessor_config.json) or a hub id like {DEFAULT_SEGMENTER}."
        )
    if reference.startswith((".", "/", "~")) or "\\" in reference or not HUB_ID.match(reference):
        raise ModelUnavailableError(
            f"The selection model '{reference}' was not found: no such folder, and it is not a hub id like "
            f"{DEFAULT_SEGMENTER}; check the path."
        )
    snapshot = find_in_cache(reference, marker="config.json")
    if snapshot is None:
        if not allow_download:
            raise ModelUnavailableError(
                f"The selection model {reference} is not installed; {segmenter_download_hint(reference)}"
            )
        snapshot = download(reference, progress=progress)
    return detect_segmenter_folder(snapshot, reference, source="hub")


def is_segmenter_installed(reference: str) -> bool:
    """True when `reference` resolves without downloading (never raises)."""
    try:
        resolve_segmenter(reference)
    except Exception:  # any reason it cannot load counts as "not installed" for the offer to download
        return False
    return True


def is_segmenter_folder(path: Path) -> bool:
    """True when a (downloaded) folder holds a selection model rather than a diffusion pipeline."""
    try:
        detect_segmenter_folder(path)
    except ModelUnavailableError:
        return False
    return True


# ---- the model ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """What the image encoder made of one image; `key` says which (the caller's choice, e.g. a revision)."""

    key: Hashable
    model: str  # the reference of the model that made it
    size: tuple[int, int]  # (width, height) of the image
    model_size: tuple[int, int]  # (width, height) the image was resized to inside the model (without padding)
    tensors: Any = field(repr=False)  # torch.Tensor (SAM) or list of feature maps (SAM 2)
    duration_s: float = 0.0


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One answer: the object's mask (uint8 HxW, 255 = selected) and the model's own quality estimate."""

    mask: np.ndarray
    score: float
    prompt: SelectionPrompt
    duration_s: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not bool(self.mask.any())


class Segmenter:
    """One loaded SAM-family model (see the module docstring); use it from one thread at a time."""

    def __init__(self, info: SegmenterInfo, device: str = "cpu") -> None:
        import torch
        import transformers
        from safetensors import SafetensorError

        self.info, self.device = info, device
        if info.model_type == "sam2":
            model_class, processor_class = transformers.Sam2Model, transformers.Sam2Processor
            try:  # Sam2ImageProcessor is built on torchvision: without it (or with a mismatched one) it refuses
                self.processor = self._load_processor(processor_class, info)
            except (ImportError, RuntimeError) as exc:
                raise ModelUnavailableError(
                    f"{info.name} is a SAM 2 model, whose image processing needs torchvision; {_TORCHVISION_HINT}."
                ) from exc
        else:
            model_class, processor_class = transformers.SamModel, transformers.SamProcessor
        try:
            model = model_class.from_pretrained(str(info.path), use_safetensors=True)
            if info.model_type == "sam":
                self.processor = self._load_processor(processor_class, info)
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
            raise ModelUnavailableError(
                f"The selection model {info.name} could not be loaded ({type(exc).__name__}: {exc!s:.100}); "
                "download it again."
            ) from exc
        self.model = model.to(device).eval()
        self._torch = torch

    @staticmethod
    def _load_processor(processor_class: Any, info: SegmenterInfo) -> Any:
        if not any((info.path / name).is_file() for name in PROCESSOR_FILES):
            # SAM 2 checkpoints converted without one (facebook/sam2-hiera-*-hf): its defaults are SAM 2's own.
            import transformers

            return processor_class(image_processor=transformers.Sam2ImageProcessor())
        if info.model_type == "sam":
            # The PIL backend: the same pixels with or without torchvision installed.
            return processor_class.from_pretrained(str(info.path), backend="pil")
        return processor_class.from_pretrained(str(info.path))

    # ---- the image encoder ----------------------------------------------------------------------------
    def embed(self, image: np.ndarray, key: Hashable = None) -> ImageEmbedding:
        """Encode an RGB(A) uint8 image (alpha is dropped: SAM sees colours)."""
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
            raise BadInputError(f"The image to select in must be RGB or RGBA pixels, got {array.shape} {array.dtype}.")
        rgb = np.ascontiguousarray(array[..., :3])
        started = time.perf_counter()
        inputs = self.processor(images=rgb, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device)
        height, width = rgb.shape[:2]
        if "reshaped_input_sizes" in inputs:  # SAM: longest side resized, the rest padding
            model_h, model_w = (int(v) for v in inputs["reshaped_input_sizes"][0])
        else:  # SAM 2: stretched to the model's square
            model_h, model_w = int(pixel_values.shape[-2]), int(pixel_values.shape[-1])
        with self._torch.inference_mode():
            tensors = self.model.get_image_embeddings(pixel_values)
        return ImageEmbedding(
            key=key,
            model=self.info.reference,
            size=(width, height),
            model_size=(model_w, model_h),
            tensors=tensors,
            duration_s=time.perf_counter() - started,
        )

    # ---- the prompt encoder and mask decoder -----------------------------------------------------------
    def predict(self, embedding: ImageEmbedding, prompt: SelectionPrompt) -> Segmentation:
        """The mask of the object the prompt points at, at the image's size."""
        torch = self._torch
        width, height = embedding.size
        prompt.check(width, height)
        if embedding.model != self.info.reference:
            raise BadInputError("The image was analysed by another selection model; click again.")
        started = time.perf_counter()
        sx, sy = embedding.model_size[0] / width, embedding.model_size[1] / height
        kwargs: dict[str, Any] = {}
        if prompt.points:
            points = [[p.x * sx, p.y * sy] for p in prompt.points]
            labels = [1 if p.include else 0 for p in prompt.points]
            kwargs["input_points"] = torch.tensor([[points]], dtype=torch.float32, device=self.device)
            kwargs["input_labels"] = torch.tensor([[labels]], dtype=torch.int64, device=self.device)
        if prompt.box is not None:
            left, top, right, bottom = prompt.box
            box = [left * sx, top * sy, right * sx, bottom * sy]
            kwargs["input_boxes"] = torch.tensor([[box]], dtype=torch.float32, device=self.device)
        # One point alone is ambiguous (a shirt or the person?): ask for SAM's three guesses and keep the one it
        # rates best. With more to go on, SAM's authors advise a single answer.
        multimask = len(prompt.points) == 1 and prompt.box is None
        with torch.inference_mode():
            outputs = self.model(image_embeddings=embedding.tensors, multimask_output=multimask, **kwargs)
            scores = outputs.iou_scores[0, 0]
            best = int(torch.argmax(scores)) if multimask else 0
            low_res = outputs.pred_masks[:, :, best : best + 1].float().cpu()  # (1, 1, 1, h, w) logits
            model_hw = [[embedding.model_size[1], embedding.model_size[0]]]
            if self.info.model_type == "sam":  # to the padded input size, then the padding cut off
                logits = self.processor.post_process_masks(low_res, model_hw, model_hw, binarize=False)[0]
            else:
                logits = self.processor.post_process_masks(low_res, model_hw, binarize=False)[0]
        mask = upscale_mask(logits.reshape(model_hw[0]).numpy(), width, height)
        return Segmentation(
            mask=mask, score=float(scores[best]), prompt=prompt, duration_s=time.perf_counter() - started
        )


def upscale_mask(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mask logits at the model's size -> the uint8 mask (255 where > 0) at width x height.

    Bilinear with half-pixel centres, as `F.interpolate(..., align_corners=False)` and `cv2.resize` sample; only
    the pixels near the positive logits are computed (bilinear reaches one source pixel), the rest is 0.
    """
    out = np.zeros((height, width), np.uint8)
    positive = logits > 0
    rows = np.flatnonzero(positive.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(positive.any(axis=0))
    src_h, src_w = logits.shape
    sx, sy = src_w / width, src_h / height  # source pixels per image pixel
    # Image pixels whose sample point lies within 2 source pixels of the positive ones (and a pixel more).
    x0 = max(0, math.floor((cols[0] - 2 + 0.5) / sx - 0.5) - 1)
    x1 = min(width, math.ceil((cols[-1] + 2 + 0.5) / sx - 0.5) + 2)
    y0 = max(0, math.floor((rows[0] - 2 + 0.5) / sy - 0.5) - 1)
    y1 = min(height, math.ceil((rows[-1] + 2 + 0.5) / sy - 0.5) + 2)
    # Image pixel (x0 + i) samples the source at (x0 + i + 0.5) * sx - 0.5, as a full-frame resize would.
    transform = np.array([[sx, 0.0, (x0 + 0.5) * sx - 0.5], [0.0, sy, (y0 + 0.5) * sy - 0.5]], np.float64)
    region = cv2.warpAffine(
        np.ascontiguousarray(logits, np.float32),
        transform,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    out[y0:y1, x0:x1] = cv2.compare(region, 0.0, cv2.CMP_GT)  # 255 where > 0, in one pass
    return out


# ---- what a worker thread keeps between requests -----------------------------------------------------------


class SegmenterCache:
    """The loaded selection model and the latest image embeddings, kept by the thread that uses them.

    Loading the model or encoding an image happens at most once per (model, image key): a click on an image
    already encoded runs the decoder alone. Counters say how often each happened (the tests read them).
    """

    def __init__(self, *, allow_download: bool = False, device: str | None = None) -> None:
        self.allow_download = allow_download
        self._device = device
        self._segmenter: Segmenter | None = None
        self._embeddings: OrderedDict[tuple[str, Hashable], ImageEmbedding] = OrderedDict()
        self._lock = threading.Lock()  # the counters are read from other threads
        self.loads = 0
        self.encodes = 0

    def segmenter(self, reference: str) -> Segmenter:
        current = self._segmenter
        if current is not None and current.info.reference == reference.strip():
            return current
        info = resolve_segmenter(reference, allow_download=self.allow_download)
        self._segmenter = None  # free the old model before loading the next
        self._embeddings.clear()
        device = self._device if self._device is not None else pick_device("auto")
        self._segmenter = Segmenter(info, device)
        with self._lock:
            self.loads += 1
        return self._segmenter

    def cached_embedding(self, reference: str, key: Hashable) -> ImageEmbedding | None:
        found = self._embeddings.get((reference.strip(), key))
        if found is not None:
            self._embeddings.move_to_end((reference.strip(), key))
        return found

    def embedding(self, reference: str, key: Hashable, image: np.ndarray | None) -> ImageEmbedding:
        """The embedding of the image `key` names: from the cache, or encoded now from `image`."""
        found = self.cached_embedding(reference, key)
        if found is not None:
            return found
        if image is None:
            raise BadInputError("The image changed since it was analysed; click again.")
        embedding = self.segmenter(reference).embed(image, key)
        self._embeddings[(reference.strip(), key)] = embedding
        while len(self._embeddings) > EMBEDDINGS_KEPT:
            self._embeddings.popitem(last=False)
        with self._lock:
            self.encodes += 1
        log.info("encoded image %r for selection in %.2f s", key, embedding.duration_s)
        return embedding

    def release(self) -> None:
        self._segmenter = None
        self._embeddings.clear()


# ---- as tasks for a worker thread (engine/tasks.py) ----------------------------------------------------------


def _cache(context: TaskContext) -> SegmenterCache:
    return context.workspace.get(SegmenterCache, SegmenterCache)


@dataclass(frozen=True, eq=False)
class EncodeImage:
    """Load the model if needed and encode the image `key` names (nothing happens when it is encoded already)."""

    model: str
    key: Hashable
    image: np.ndarray = field(repr=False)  # read-only RGB(A) uint8
    title: str = "Analysing the image for selection"

    def run(self, context: TaskContext) -> ImageEmbedding:
        return _cache(context).embedding(self.model, self.key, self.image)


@dataclass(frozen=True, eq=False)
class SelectObject:
    """The mask of the object a prompt points at, on the image `key` names (encoded first when it is not yet)."""

    model: str
    key: Hashable
    image: np.ndarray | None = field(repr=False)  # None: the embedding must be cached already
    prompt: SelectionPrompt = field(default_factory=SelectionPrompt)
    title: str = "Selecting the object"

    def run(self, context: TaskContext) -> Segmentation:
        cache = _cache(context)
        embedding = cache.embedding(self.model, self.key, self.image)
        context.cancel.raise_if_cancelled()
        return cache.segmenter(self.model).predict(embedding, self.prompt)
