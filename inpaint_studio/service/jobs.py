"""The HTTP API of one replica (engine/wire.py is the format): submit, stream, cancel, models, health.

Independent of Ray: service/deployment.py gives it the replica's engines (Ray Serve's per-replica LRU of
loaded models), its identity and the cluster-wide cancel board. One job runs at a time per replica, in a
worker thread (the engine is synchronous and owns the device); later jobs wait for it with their
connection kept alive. A job's engine is taken from the LRU only once the job may run, so a model is never
evicted while a job uses it.

Cancel: the client closing its connection cancels the job (Ray Serve cancels the request, and the stream
sets the job's CancelToken); an explicit `POST /v1/jobs/{id}/cancel` may land on another replica, so it is
written on the board, which the job's replica reads while the job runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from inpaint_studio import __version__
from inpaint_studio.core.errors import BadInputError, EngineError, InpaintStudioError
from inpaint_studio.engine import wire
from inpaint_studio.engine.events import CancelToken, EngineEvent, JobCancelled, JobFailed, JobFinished, LatentHandoff
from inpaint_studio.engine.runner import Engine
from inpaint_studio.service import auth
from inpaint_studio.service.limits import (
    MAX_IMAGES,
    MAX_REQUEST_JSON_MB,
    MB,
    UploadLimits,
    UploadTooLarge,
    limited,
    load_upload,
)
from inpaint_studio.service.policy import ModelPolicy

log = logging.getLogger(__name__)

ALIVE_S = 5.0  # a line at least this often, so clients tell a quiet job from a dead connection
BOARD_POLL_S = 1.0
BOARD_TIMEOUT_S = 5.0
QUEUE_WAIT_S = 0.25  # how often the stream looks up from the job's events
_DONE = object()


class _CancelledWhileWaiting(Exception):
    """A job cancelled before this replica's device was free for it."""


# The named inputs Engine.run takes: a new keyword there is a new image part, with no protocol change.
ENGINE_INPUTS = frozenset(
    name
    for name in inspect.signature(Engine.run).parameters
    if name in ("image", "mask") or name.endswith(("_image", "_mask"))
)


class CancelBoard(Protocol):
    """Explicit cancels shared by every replica (a Ray actor in the deployment)."""

    async def cancel(self, server_job: str) -> bool: ...

    async def is_cancelled(self, server_job: str) -> bool: ...

    async def register(self, server_job: str) -> None: ...

    async def forget(self, server_job: str) -> None: ...


@dataclass
class Identity:
    """Who answers: shown by /v1/health and recorded with every result."""

    node: str
    replica: str
    device: str
    device_name: str
    actor: str = ""  # the replica's Ray actor name (health only: operators and tests ray.kill it)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "replica": self.replica, "version": __version__}


def _error(status: int, error: InpaintStudioError) -> JSONResponse:
    return JSONResponse(wire.error_json(error), status_code=status)


def _unauthorized() -> JSONResponse:
    error = BadInputError(
        "The server needs its token and did not get the right one; give it with --token-file or "
        "INPAINT_STUDIO_TOKEN (the studio: Settings > Engine)."
    )
    return JSONResponse(wire.error_json(error), status_code=401, headers={"WWW-Authenticate": "Bearer"})


class JobService:
    """See the module docstring."""

    def __init__(
        self,
        *,
        engine_for: Callable[[str], Awaitable[Any]],
        identity: Identity,
        policy: ModelPolicy,
        limits: UploadLimits,
        token_digest: str | None,
        board: CancelBoard | None = None,
        loaded_models: Callable[[], list[str]] = list,
    ) -> None:
        self._engine_for = engine_for  # model reference -> an object with `.engine` (an Engine)
        self.identity = identity
        self.policy = policy
        self.limits = limits
        self._token_digest = token_digest
        self._board = board
        self._loaded_models = loaded_models
        self._slot = asyncio.Lock()  # one job at a time on this replica's device
        self._running: dict[str, CancelToken] = {}
        self._waiting = 0
        self._board_checked = 0.0

    def authorized(self, request: Request) -> bool:
        return auth.authorized(request.headers.get("authorization"), self._token_digest)

    # ---- GET ------------------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        if not self.authorized(request):
            return _unauthorized()
        return JSONResponse(
            {
                "status": "ok",
                "api": wire.API_VERSION,
                "version": __version__,
                "device": self.identity.device,
                "device_name": self.identity.device_name,
                "node": self.identity.node,
                "replica": self.identity.replica,
                "actor": self.identity.actor,
                "loaded_models": self._loaded_models(),
                "running": len(self._running) - self._waiting,
                "waiting": self._waiting,
                "allow_download": self.policy.allow_download,
                "max_upload_mb": round(self.limits.max_bytes / MB),
                "max_megapixels": round(self.limits.max_pixels / 1e6, 1),
            }
        )

    async def models(self, request: Request) -> Response:
        if not self.authorized(request):
            return _unauthorized()
        rows = await asyncio.to_thread(self.policy.rows)
        return JSONResponse({"models": rows, "allow_download": self.policy.allow_download})

    # ---- cancel ---------------------------------------------------------------------------------------------
    async def cancel(self, request: Request, server_job: str) -> Response:
        if not self.authorized(request):
            return _unauthorized()
        token = self._running.get(server_job)
        known = token is not None
        if token is not None:
            token.cancel()
        elif self._board is not None:
            known = bool(await self._on_board(self._board.cancel(server_job), False))
        return JSONResponse({"job": server_job, "cancelling": known}, status_code=200 if known else 404)

    # ---- submit ---------------------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        if not self.authorized(request):
            return _unauthorized()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_bytes:
            return _error(413, self.limits.too_large())
        try:
            parts = await self._read_parts(request)
            raw = parts.pop(wire.REQUEST_PART, None)
            if raw is None:
                raise BadInputError("The job request has no 'request' part; update the client.")
            submitted = wire.read_request(raw)
            unknown = sorted(set(parts) - ENGINE_INPUTS)
            if unknown:
                raise BadInputError(
                    f"This server does not take the input(s) {', '.join(unknown)}; run the same Inpaint Studio "
                    "version on the server as on this computer."
                )
            images = await asyncio.to_thread(self._decode, parts, submitted)
        except UploadTooLarge as exc:
            return _error(413, exc)
        except BadInputError as exc:
            return _error(400, exc)
        server_job = uuid.uuid4().hex
        cancel = CancelToken()
        self._running[server_job] = cancel
        stream = self._stream(server_job, submitted, images, cancel)
        return StreamingResponse(stream, media_type=wire.NDJSON, headers={"Cache-Control": "no-store"})

    async def _read_parts(self, request: Request) -> dict[str, bytes]:
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise BadInputError("The upload is not a multipart job request; update the client.")
        parser = MultiPartParser(
            request.headers,
            limited(request.stream(), self.limits),
            max_files=MAX_IMAGES,
            max_fields=2,
            max_part_size=MAX_REQUEST_JSON_MB * MB,
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise BadInputError(f"The upload is not a valid job request ({exc.message}); update the client.") from exc
        except (AssertionError, KeyError) as exc:  # a missing boundary or part header
            raise BadInputError("The upload is not a multipart job request; update the client.") from exc
        parts: dict[str, bytes] = {}
        try:
            for name, value in form.multi_items():
                if name in parts:
                    raise BadInputError(f"The job request has two parts named '{name:.40}'; update the client.")
                parts[name] = await value.read() if isinstance(value, UploadFile) else value.encode("utf-8")
        finally:
            await form.close()
        return parts

    def _decode(self, parts: dict[str, bytes], submitted: wire.JobRequest) -> dict[str, Any]:
        images: dict[str, Any] = {}
        for name, data in parts.items():
            images[name] = load_upload(name, data, self.limits, mode=submitted.modes.get(name))
        return images

    async def _stream(
        self, server_job: str, submitted: wire.JobRequest, images: dict[str, Any], cancel: CancelToken
    ) -> AsyncIterator[bytes]:
        finished = threading.Event()
        thread: threading.Thread | None = None
        try:
            if self._board is not None:
                await self._on_board(self._board.register(server_job), None)
            yield wire.line({"event": "accepted", "job": server_job, "server": self.identity.to_dict()})
            self._waiting += 1
            try:
                async for alive in self._wait_for_slot(cancel, server_job):
                    yield alive
            except _CancelledWhileWaiting:
                yield self._encode(JobCancelled(submitted.job_id))
                return
            finally:
                self._waiting -= 1
            try:
                queue: asyncio.Queue[Any] = asyncio.Queue()
                loop = asyncio.get_running_loop()

                def push(item: Any) -> None:
                    loop.call_soon_threadsafe(queue.put_nowait, item)

                key = submitted.job.model.strip() or "classic"
                try:
                    slot = await self._engine_for(key)
                except Exception as exc:
                    log.exception("no engine for %s", key)
                    error = EngineError(f"The server could not prepare an engine ({type(exc).__name__}); try again.")
                    yield self._encode(JobFailed(submitted.job_id, str(error), error))
                    return
                thread = threading.Thread(
                    target=self._work,
                    args=(slot.engine, submitted, images, cancel, push, finished),
                    name=f"job-{server_job[:8]}",
                    daemon=True,
                )
                thread.start()
                last = time.monotonic()
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=QUEUE_WAIT_S)
                    except asyncio.TimeoutError:
                        await self._check_board(server_job, cancel)
                        if time.monotonic() - last >= ALIVE_S:
                            last = time.monotonic()
                            yield wire.line({"event": "alive"})
                        continue
                    if item is _DONE:
                        break
                    last = time.monotonic()
                    yield await asyncio.to_thread(self._encode, item, images.get("image"))
            finally:
                if not finished.is_set():
                    cancel.cancel()  # the client went away, or the stream failed: stop after this step
                await self._release_after(thread)
        finally:
            self._running.pop(server_job, None)
            if self._board is not None:
                await self._on_board(self._board.forget(server_job), None)

    async def _release_after(self, thread: threading.Thread | None) -> None:
        """Free the device for the next job once this job's thread has ended (cancel stops it at the next
        step); a second cancel of this stream must not leave the device taken."""
        if thread is None or not thread.is_alive():
            self._slot.release()
            return
        joined = asyncio.ensure_future(asyncio.to_thread(thread.join))
        joined.add_done_callback(lambda _future: self._slot.release())
        await asyncio.shield(joined)

    async def _wait_for_slot(self, cancel: CancelToken, server_job: str) -> AsyncIterator[bytes]:
        """Wait for this replica's device (one job at a time), saying so every ALIVE_S."""
        acquire = asyncio.ensure_future(self._slot.acquire())
        last = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({acquire}, timeout=BOARD_POLL_S)
                if done:
                    return
                await self._check_board(server_job, cancel)
                if cancel.cancelled:  # cancelled while waiting: no need to wait for the device
                    raise _CancelledWhileWaiting
                if time.monotonic() - last >= ALIVE_S:
                    last = time.monotonic()
                    yield wire.line({"event": "alive", "waiting": True})
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                self._slot.release()
            else:
                acquire.cancel()
            raise

    async def _check_board(self, server_job: str, cancel: CancelToken) -> None:
        if self._board is None or cancel.cancelled:
            return
        now = time.monotonic()
        if now - self._board_checked < BOARD_POLL_S:
            return
        self._board_checked = now
        if await self._on_board(self._board.is_cancelled(server_job), False):
            cancel.cancel()

    @staticmethod
    async def _on_board(call: Awaitable[Any], default: Any) -> Any:
        """A call to the cancel board, which is a convenience: a slow or lost board (a busy cluster) must never
        hold up or break a job's stream; an explicit cancel then falls back to the client's disconnect."""
        try:
            return await asyncio.wait_for(call, BOARD_TIMEOUT_S)
        except Exception:
            log.warning("the cancel board did not answer in time", exc_info=True)
            return default

    def _work(
        self,
        engine: Engine,
        submitted: wire.JobRequest,
        images: dict[str, Any],
        cancel: CancelToken,
        push: Callable[[Any], None],
        finished: threading.Event,
    ) -> None:
        """The job, in a worker thread: the engine's events go to the stream as they come."""
        job_id = submitted.job_id
        try:
            try:
                self.policy.check_job(submitted.job)
            except InpaintStudioError as exc:
                push(JobFailed(job_id, str(exc), exc))
                return
            handoff = _handoff_in(submitted.handoff, images.get("image"))
            engine.run(
                submitted.job,
                on_event=lambda event: push(self._annotate(event)),
                cancel=cancel,
                job_id=job_id,
                preview_every=submitted.preview_every,
                handoff=handoff,
                **images,
            )
        except InpaintStudioError:
            pass  # the engine already emitted JobFailed / JobCancelled for it
        except Exception as exc:  # defensive: Engine.run turns these into EngineError itself
            log.exception("job %s failed outside the engine's handler", job_id)
            error = EngineError(f"The server failed unexpectedly ({type(exc).__name__}); try again.")
            push(JobFailed(job_id, str(error), error))
        finally:
            finished.set()
            push(_DONE)

    def _annotate(self, event: EngineEvent) -> EngineEvent:
        """A finished result records the server that made it (history shows it; the client adds its URL)."""
        if not isinstance(event, JobFinished):
            return event
        result = event.result
        extra = dict(result.extra)
        extra.setdefault("device_name", self.identity.device_name)
        extra["server"] = self.identity.to_dict()
        return JobFinished(event.job_id, _replace_extra(result, extra))

    def _encode(self, event: EngineEvent, base: Any = None) -> bytes:
        blob = None
        if isinstance(event, JobFinished) and event.result.handoff is not None:
            blob = _handoff_blob(event.result.handoff)
        return wire.line(wire.event_json(event, handoff_blob=blob, base=base))


def _replace_extra(result: Any, extra: dict[str, Any]) -> Any:
    return dataclasses.replace(result, extra=extra)


def _handoff_blob(handoff: LatentHandoff) -> bytes | None:
    """The hand-off's latents as safetensors (never a pickle)."""
    from safetensors.torch import save

    try:
        return save({"latents": handoff.latents.detach().contiguous().cpu()})
    except Exception:  # a hand-off is an optimisation: without it the next step encodes the image again
        log.debug("could not serialise the latent hand-off", exc_info=True)
        return None


def _handoff_in(data: dict[str, Any] | None, image: Any) -> LatentHandoff | None:
    """A hand-off a client sent back: used only when it belongs to exactly the image sent with it."""
    if not data or image is None:
        return None
    try:
        from safetensors.torch import load

        rgb = np.ascontiguousarray(np.asarray(image)[..., :3])
        if data.get("rgb_sha256") != wire.rgb_digest(rgb):
            return None
        latents = load(wire.unb64(data.get("latents"), "latent hand-off"))["latents"]
        size = tuple(int(v) for v in data.get("size") or ())
        return LatentHandoff(latents, dict(data.get("latent_space") or {}), size, rgb)
    except Exception:  # damaged or foreign data: run without it (same pixels, one more encode)
        log.debug("ignoring an unusable latent hand-off", exc_info=True)
        return None
