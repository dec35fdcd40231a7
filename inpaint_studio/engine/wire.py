"""The remote engine's wire format (API version 1): what `inpaint-studio serve` and engine/remote.py exchange.

Generic on purpose, so new job fields and new named input images travel without a protocol change:

* a job is submitted as one multipart/form-data POST to ``/v1/jobs``: a part named ``request`` holds JSON
  (``{"api": 1, "job": InpaintJob.to_dict(), "job_id": ..., "preview_every": ..., "images": {name: {"mode":
  ...}}, "handoff": ... | null}``) and every input image is a lossless PNG part named like the engine's
  keyword (``image``, ``mask``, ``control_image``, ...). Names ending in ``mask`` are read as masks.
* the answer is a stream of JSON lines (``application/x-ndjson``), one per event, in the order the local
  engine emits them: ``accepted`` (the server's id of the job, for an explicit cancel), ``started``,
  ``progress`` (with an optional PNG preview), then one of ``finished`` (result PNGs, the result's facts and
  one GenerationRecord per variant), ``cancelled`` or ``failed`` (the same one-sentence message and the
  error's class name). ``alive`` lines keep an idle connection observably alive; clients skip them.
* ``POST /v1/jobs/{id}/cancel`` cancels explicitly (closing the connection cancels too); ``GET /v1/models``
  lists what the server can run; ``GET /v1/health`` says what it runs on. Every call carries
  ``Authorization: Bearer TOKEN`` when the server has a token.

Images are PNG (lossless: a remote result is bit-identical to a local one), JSON is plain data; nothing is
ever pickled. A chain's latent hand-off travels as a safetensors blob, opaque to the client.

Pure Python + Pillow + numpy: no torch (the studio's UI thread may import it), no Ray, no HTTP library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core import masks
from inpaint_studio.core.errors import (
    BadInputError,
    CancelledError,
    EmptyMaskError,
    EngineError,
    InpaintStudioError,
    ModelUnavailableError,
    OutOfMemoryError,
)
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.record import plain_data
from inpaint_studio.engine.events import (
    EngineEvent,
    InpaintResult,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    LatentHandoff,
)

API_VERSION = 1
PREFIX = f"/v{API_VERSION}"
JOBS_PATH = f"{PREFIX}/jobs"
MODELS_PATH = f"{PREFIX}/models"
HEALTH_PATH = f"{PREFIX}/health"
REQUEST_PART = "request"
NDJSON = "application/x-ndjson"
# Ray Serve routes a request to a replica that already holds this model (model multiplexing).
MODEL_HEADER = "serve_multiplexed_model_id"
PNG_LEVEL = 1  # zlib level: large photos encode several times faster than at 6, files ~10 % larger

# The error classes a server may name; anything else arrives as an EngineError with the server's sentence.
ERRORS: dict[str, type[InpaintStudioError]] = {
    cls.__name__: cls
    for cls in (
        InpaintStudioError,
        BadInputError,
        EmptyMaskError,
        ModelUnavailableError,
        CancelledError,
        OutOfMemoryError,
        EngineError,
    )
}


def error_name(error: BaseException | None) -> str:
    """The error's class as the wire names it: the nearest one a client knows (a subclass travels as its base)."""
    for cls in type(error).__mro__ if error is not None else ():
        if ERRORS.get(cls.__name__) is cls:
            return cls.__name__
    return EngineError.__name__


def cancel_path(server_job: str) -> str:
    return f"{JOBS_PATH}/{server_job}/cancel"


def is_mask_name(name: str) -> bool:
    return name == "mask" or name.endswith("_mask")


# ---- images ------------------------------------------------------------------------------------------------
def as_pil(image: Image.Image | np.ndarray, *, mask: bool = False) -> Image.Image:
    """The image as the local engine would read it: masks as "L", images as "RGB" or "RGBA"."""
    if mask:
        if isinstance(image, Image.Image):
            return image.convert("L")
        return Image.fromarray(masks.as_mask_array(image))
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if pil.mode not in ("RGB", "RGBA"):
        pil = pil.convert("RGBA" if "A" in pil.getbands() or "transparency" in pil.info else "RGB")
    return pil


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def png_image(data: bytes) -> Image.Image:
    """A PNG the server sent (results, previews), fully decoded."""
    with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
        im.load()
        return im.copy()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadInputError(f"The {what} is missing from the server's answer; update the client or the server.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(f"The {what} is damaged (not base64); try again.") from exc


# ---- the request -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WireLatents:
    """A latent hand-off as the server sent it: a safetensors blob the client passes back untouched."""

    data: bytes


def rgb_digest(rgb: np.ndarray) -> str:
    array = np.ascontiguousarray(rgb)
    digest = hashlib.sha256(str(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def handoff_to_wire(handoff: LatentHandoff, latents: bytes) -> dict[str, Any]:
    return {
        "latents": b64(latents),
        "latent_space": plain_data(handoff.latent_space),
        "size": list(handoff.size),
        "rgb_sha256": rgb_digest(handoff.rgb),
    }


def request_json(
    job: InpaintJob,
    images: Mapping[str, Image.Image],
    *,
    job_id: int,
    preview_every: int,
    handoff: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "api": API_VERSION,
        "job": job.to_dict(),
        "job_id": int(job_id),
        "preview_every": int(preview_every),
        "images": {name: {"mode": image.mode} for name, image in images.items()},
        "handoff": handoff,
    }


@dataclass(frozen=True)
class JobRequest:
    """A submitted request, read and checked on the server (before any image is decoded)."""

    job: InpaintJob
    job_id: int
    preview_every: int
    modes: dict[str, str]
    handoff: dict[str, Any] | None


def read_request(data: bytes) -> JobRequest:
    """Parse the ``request`` part; every problem is one BadInputError sentence."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadInputError("The job request is not valid JSON; update the client.") from exc
    if not isinstance(raw, dict):
        raise BadInputError("The job request must be a JSON object; update the client.")
    if raw.get("api") != API_VERSION:
        raise BadInputError(
            f"The client speaks API version {raw.get('api')!r:.20} but this server speaks {API_VERSION}; "
            "use the same Inpaint Studio version on both sides."
        )
    job = InpaintJob.from_dict(raw.get("job") if isinstance(raw.get("job"), Mapping) else {})
    job_id, preview_every = raw.get("job_id", 0), raw.get("preview_every", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (job_id, preview_every)):
        raise BadInputError("The job request's job_id and preview_every must be whole numbers; update the client.")
    images = raw.get("images") or {}
    if not isinstance(images, Mapping):
        raise BadInputError("The job request's 'images' must be an object; update the client.")
    modes = {}
    for name, info in images.items():
        mode = info.get("mode") if isinstance(info, Mapping) else None
        if mode not in ("RGB", "RGBA", "L"):
            raise BadInputError(f"The input '{name:.40}' has the mode {mode!r:.20}; send RGB, RGBA or L images.")
        modes[str(name)] = mode
    handoff = raw.get("handoff")
    if handoff is not None and not isinstance(handoff, Mapping):
        raise BadInputError("The job request's 'handoff' must be an object; update the client.")
    return JobRequest(job, job_id, max(0, preview_every), modes, dict(handoff) if handoff else None)


# ---- events ------------------------------------------------------------------------------------------------
def line(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def event_json(
    event: EngineEvent, *, handoff_blob: bytes | None = None, base: Image.Image | None = None
) -> dict[str, Any]:
    """One engine event as plain data (the server side)."""
    if isinstance(event, JobStarted):
        return {
            "event": "started",
            "job_id": event.job_id,
            "job": event.job.to_dict(),
            "total_steps": event.total_steps,
        }
    if isinstance(event, JobProgress):
        preview = b64(png_bytes(event.preview.convert("RGB"))) if event.preview is not None else None
        return {
            "event": "progress",
            "job_id": event.job_id,
            "step": event.step,
            "total": event.total,
            "variant": event.variant,
            "preview": preview,
        }
    if isinstance(event, JobFinished):
        return {"event": "finished", "job_id": event.job_id, "result": result_json(event.result, handoff_blob, base)}
    if isinstance(event, JobCancelled):
        return {"event": "cancelled", "job_id": event.job_id, "message": event.message}
    if isinstance(event, JobFailed):
        return {"event": "failed", "job_id": event.job_id, "message": event.message, "error": error_name(event.error)}
    raise TypeError(f"not an engine event: {event!r}")


def unchanged_outside(image: Image.Image, base: Image.Image | None, box: tuple[int, int, int, int]) -> bool:
    """Whether `image` equals `base` everywhere outside `box` (same size and mode): then only the box travels."""
    if base is None or image.size != base.size or image.mode != base.mode:
        return False
    out, inp = np.asarray(image), np.asarray(base)
    left, top, right, bottom = box
    strips = (np.s_[:top], np.s_[bottom:], np.s_[top:bottom, :left], np.s_[top:bottom, right:])
    return all(np.array_equal(out[strip], inp[strip]) for strip in strips)


def image_json(image: Image.Image, base: Image.Image | None, box: tuple[int, int, int, int]) -> Any:
    """A result image: a PNG of the whole image, or {"box", "png"} with only the area the model worked on when
    every other pixel is the input's (the usual case on a large photo: the client has those pixels)."""
    if unchanged_outside(image, base, box) and (box[2] - box[0]) * (box[3] - box[1]) < image.width * image.height:
        return {"box": list(box), "png": b64(png_bytes(image.crop(box)))}
    return b64(png_bytes(image))


def image_from_json(data: Any, base: Image.Image | None) -> Image.Image:
    if isinstance(data, str):
        return png_image(unb64(data, "result image"))
    if not isinstance(data, Mapping) or base is None:
        raise BadInputError("The server sent part of an image this client did not send; update the client.")
    left, top, right, bottom = (int(v) for v in data["box"])
    patch = png_image(unb64(data.get("png"), "result image"))
    if patch.size != (right - left, bottom - top) or patch.mode != base.mode:
        raise BadInputError("The server sent a damaged result image; try again.")
    image = base.copy()
    image.paste(patch, (left, top))
    return image


def result_json(
    result: InpaintResult, handoff_blob: bytes | None = None, base: Image.Image | None = None
) -> dict[str, Any]:
    """`base`: the job's input image (as the server read it), for sending only the changed area."""
    data: dict[str, Any] = {
        "images": [image_json(image, base, result.region) for image in result.images],
        "job": result.job.to_dict(),
        "seeds": list(result.seeds),
        "model": plain_data(result.model),
        "device": result.device,
        "duration_s": result.duration_s,
        "region": list(result.region),
        "extra": plain_data(result.extra),
        "records": [result.record(i).to_dict() for i in range(len(result.images))],
        "handoff": None,
    }
    if result.handoff is not None and handoff_blob is not None:
        data["handoff"] = handoff_to_wire(result.handoff, handoff_blob)
    return data


def failure(data: Mapping[str, Any]) -> InpaintStudioError:
    """The error a ``failed`` event (or an error answer) describes, as the class the server named."""
    cls = ERRORS.get(str(data.get("error")), EngineError)
    message = str(data.get("message") or "The server failed without saying why; look at its log.")
    return CancelledError(message) if cls is CancelledError else cls(message)


def event_from_json(
    data: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None, base: Image.Image | None = None
) -> EngineEvent | None:
    """The engine event a stream line describes (the client side); None for lines that are not events.

    `extra` is merged into a finished result's facts (the client adds which server made it); `base` is the
    input image the client sent (a result may come as the changed area only).
    """
    kind = data.get("event")
    job_id = int(data.get("job_id", 0))
    if kind == "started":
        return JobStarted(job_id, InpaintJob.from_dict(data["job"]), int(data["total_steps"]))
    if kind == "progress":
        preview = data.get("preview")
        image = png_image(unb64(preview, "preview")) if preview else None
        return JobProgress(job_id, int(data["step"]), int(data["total"]), int(data["variant"]), image)
    if kind == "finished":
        return JobFinished(job_id, result_from_json(data["result"], extra or {}, base))
    if kind == "cancelled":
        return JobCancelled(job_id, str(data.get("message") or JobCancelled(job_id).message))
    if kind == "failed":
        error = failure(data)
        return JobFailed(job_id, str(error), error)
    return None


def result_from_json(
    data: Mapping[str, Any], extra: Mapping[str, Any], base: Image.Image | None = None
) -> InpaintResult:
    images = [image_from_json(item, base) for item in data["images"]]
    handoff = None
    wire = data.get("handoff")
    if wire and images:
        rgb = np.ascontiguousarray(np.asarray(images[0])[..., :3])
        latents = WireLatents(unb64(wire.get("latents"), "latent hand-off"))
        handoff = LatentHandoff(latents, dict(wire.get("latent_space") or {}), tuple(wire.get("size") or ()), rgb)
    left, top, right, bottom = (int(v) for v in data["region"])
    return InpaintResult(
        images=images,
        job=InpaintJob.from_dict(data["job"]),
        seeds=[int(seed) for seed in data["seeds"]],
        model=dict(data.get("model") or {}),
        device=str(data.get("device", "")),
        duration_s=float(data.get("duration_s", 0.0)),
        region=(left, top, right, bottom),
        extra={**dict(data.get("extra") or {}), **dict(extra)},
        handoff=handoff,
    )


def error_json(error: InpaintStudioError) -> dict[str, Any]:
    """The body of an error answer (HTTP 4xx/5xx): the same sentence and class as a failed event."""
    return {"error": error_name(error), "message": str(error)}
