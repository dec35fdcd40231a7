"""A remote engine: the same `run(job, image, mask, *, on_event, cancel, job_id, ...)` contract as
`runner.Engine`, served by `inpaint-studio serve` on another machine (engine/wire.py is the format).

The studio's worker thread, the CLI's `--server` and chains/replay use it in place of the local engine:
the same events arrive in the same order, the same InpaintStudioError classes are raised with the
server's sentences, and a result is bit-identical to a local run on the server's device. The result
records where it was made: `extra["server"]` (address, node, replica) and a device name that names the
server.

What can go wrong between here and the server is one sentence each: the server cannot be reached, refuses
the token, finds the upload too large, or the connection breaks during a job (`ConnectionLostError`:
nothing was changed, so the job can simply be queued again).

Cancel: the CancelToken is watched while the job streams; a cancel asks the server to stop after the current
step (`POST /v1/jobs/{id}/cancel`) and waits for its `cancelled` event. If that does not come within
CANCEL_GRACE_S the connection is closed, which cancels the job on the server as well.

httpx only (no torch, no Ray): the studio's UI thread may import this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

from inpaint_studio import __version__
from inpaint_studio.core.errors import BadInputError, CancelledError, EngineError, InpaintStudioError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine import wire
from inpaint_studio.engine.events import (
    CancelToken,
    EngineEvent,
    EventSink,
    InpaintResult,
    JobCancelled,
    JobFailed,
    JobFinished,
    LatentHandoff,
)

TOKEN_ENV = "INPAINT_STUDIO_TOKEN"
CONNECT_TIMEOUT_S = 10.0
# The server sends a line at least every few seconds (progress, or `alive`): silence this long means a
# broken connection or a stuck server.
READ_TIMEOUT_S = 120.0
CANCEL_GRACE_S = 15.0
_WATCH_INTERVAL_S = 0.1


class ConnectionLostError(InpaintStudioError):
    """The server could not be reached, or the connection broke during a job (nothing was changed)."""

    exit_code = 1


class AuthenticationError(BadInputError):
    """The server refused the token (or needs one)."""


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in a file (its first line, without surrounding spaces); one sentence when unusable."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"The token file {p} cannot be read ({exc.strerror or exc}); check the path.") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"The token file {p} is not text; put the token on its first line.") from exc
    token = (text.strip().splitlines() or [""])[0].strip()
    if not token:
        raise BadInputError(f"The token file {p} is empty; put the token on its first line.")
    return token


def token_from(token_file: str | None = None) -> str | None:
    """The client's token: the file when given, else INPAINT_STUDIO_TOKEN, else None."""
    if token_file:
        return read_token_file(token_file)
    return os.environ.get(TOKEN_ENV, "").strip() or None


def normalise_url(url: str) -> str:
    """`host:port` or `http(s)://host:port[/prefix]` -> the base URL without a trailing slash."""
    text = url.strip()
    if not text:
        raise BadInputError("The server address is empty; give one like http://gpu-box:8000.")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInputError(
            f"The server address '{url:.80}' is not an http(s) address; use one like http://gpu-box:8000."
        )
    return text.rstrip("/")


class RemoteEngine:
    """See the module docstring. Thread safe: one httpx client with a connection pool."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.host = urlsplit(self.url).netloc
        headers = {"User-Agent": f"inpaint-studio/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self.allow_download = False  # the server decides (inpaint-studio serve --allow-download)
        self._health: dict[str, Any] | None = None

    # ---- the Engine contract ----------------------------------------------------------------------------
    def run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray | None = None,
        mask: Image.Image | np.ndarray | None = None,
        *,
        handoff: LatentHandoff | None = None,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        job_id: int = 0,
        preview_every: int = 0,
        **images: Image.Image | np.ndarray | None,
    ) -> InpaintResult:
        """Run `job` on the server; events and errors as `Engine.run`. Further named images (e.g.
        `control_image=`) are sent as parts of the same name: the server passes them to its engine."""
        sink = on_event if on_event is not None else (lambda event: None)
        cancel = cancel if cancel is not None else CancelToken()
        ended: list[EngineEvent] = []

        def emit(event: EngineEvent) -> None:
            if isinstance(event, JobFinished | JobFailed | JobCancelled):
                ended.append(event)
            sink(event)

        # Like Engine.run, every way out of a job is announced: a refusal before the stream (token, upload)
        # is a JobFailed too, so the studio's worker shows it.
        try:
            return self._run(job, image, mask, handoff, emit, cancel, job_id, preview_every, images)
        except CancelledError as exc:
            if not ended:
                emit(JobCancelled(job_id, str(exc)))
            raise
        except InpaintStudioError as exc:
            if not ended:
                emit(JobFailed(job_id, str(exc), exc))
            raise

    def _run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray | None,
        mask: Image.Image | np.ndarray | None,
        handoff: LatentHandoff | None,
        emit: EventSink,
        cancel: CancelToken,
        job_id: int,
        preview_every: int,
        images: dict[str, Image.Image | np.ndarray | None],
    ) -> InpaintResult:
        named = {"image": image, "mask": mask, **images}
        pil = {
            name: wire.as_pil(value, mask=wire.is_mask_name(name)) for name, value in named.items() if value is not None
        }
        request = wire.request_json(
            job, pil, job_id=job_id, preview_every=preview_every, handoff=self._handoff(handoff)
        )
        files: list[tuple[str, tuple[str | None, bytes, str]]] = [
            (wire.REQUEST_PART, (None, json.dumps(request).encode("utf-8"), "application/json"))
        ]
        files += [(name, (f"{name}.png", wire.png_bytes(value), "image/png")) for name, value in pil.items()]
        cancel.raise_if_cancelled()
        headers = {wire.MODEL_HEADER: job.model.strip() or "classic"}
        try:
            with self._client.stream("POST", wire.JOBS_PATH, files=files, headers=headers) as response:
                self._check(response)
                return self._follow(response, job_id, emit, cancel, pil.get("image"))
        except httpx.TransportError as exc:
            raise (CancelledError() if cancel.cancelled else self._lost(exc)) from exc

    def upscale(self, job: Any, image: Any, **_: Any) -> Any:
        """Upscaling is not part of the service's API (yet): one sentence instead of a missing method."""
        raise BadInputError(
            f"Upscaling runs on this computer, not on the server {self.host}; "
            "switch Edit > Settings > Engine to This computer to upscale."
        )

    def release(self) -> None:
        """Nothing is loaded here (the server keeps its models loaded for every client)."""

    def allow_unsafe_checkpoint(self, path: str) -> None:
        """A server never loads pickled checkpoints; its refusal says so when a job names one."""

    def close(self) -> None:
        self._client.close()

    # ---- other calls --------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """What the server runs on (device, device name, node, version, models loaded); cached."""
        data = self._get_json(wire.HEALTH_PATH)
        self._health = data
        return data

    def models(self) -> list[dict[str, Any]]:
        """The server's model list (rows as `inpaint-studio models --json` prints them)."""
        data = self._get_json(wire.MODELS_PATH)
        rows = data.get("models") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise EngineError(f"The server {self.host} sent an unreadable model list; update it.")
        return [row for row in rows if isinstance(row, dict)]

    def describe(self) -> tuple[str, str]:
        """(device, device name) for the status bar and history: the server's, named after the server."""
        health = self._health or self.health()
        device = str(health.get("device") or "remote")
        return device, f"{health.get('device_name') or device} on {self.host}"

    def test(self) -> str:
        """One sentence for the studio's Test button: what answers at this address (or the error)."""
        health = self.health()
        name = health.get("device_name") or health.get("device") or "an unknown device"
        node = f" (node {health['node']})" if health.get("node") else ""
        return f"Connected to Inpaint Studio {health.get('version', '?')} at {self.host}: {name}{node}."

    # ---- internals ----------------------------------------------------------------------------------------
    def _get_json(self, path: str) -> dict[str, Any]:
        try:
            response = self._client.get(path)
        except httpx.TransportError as exc:
            raise self._lost(exc, during_job=False) from exc
        self._check(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise EngineError(f"{self.host} did not answer like an Inpaint Studio server; check the address.") from exc
        if not isinstance(data, dict):
            raise EngineError(f"{self.host} did not answer like an Inpaint Studio server; check the address.")
        return data

    def _handoff(self, handoff: LatentHandoff | None) -> dict[str, Any] | None:
        """A hand-off the server made travels back as it came; a local one (torch) is not sent."""
        if handoff is None or not isinstance(handoff.latents, wire.WireLatents):
            return None
        return wire.handoff_to_wire(handoff, handoff.latents.data)

    def _check(self, response: httpx.Response) -> None:
        """Turn an error answer into its sentence (the body says it; the status when it does not)."""
        if response.status_code < 400:
            content_type = response.headers.get("content-type", "")
            if response.request.method == "POST" and wire.NDJSON not in content_type:
                raise EngineError(f"{self.host} did not answer like an Inpaint Studio server; check the address.")
            return
        response.read()
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "message" in body and "error" in body:
            error = wire.failure(body)
            if response.status_code in (401, 403):
                raise AuthenticationError(str(error))
            raise error
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"The server {self.host} refused the request ({response.status_code}); give it its token with "
                f"--token-file or {TOKEN_ENV}."
            )
        if response.status_code == 404:
            raise EngineError(
                f"{self.host} has no Inpaint Studio API v{wire.API_VERSION} (404); check the address and that "
                "both sides run the same Inpaint Studio version."
            )
        if response.status_code == 413:
            raise BadInputError(f"The image is too large for the server {self.host}; send a smaller one.")
        raise EngineError(
            f"The server {self.host} answered {response.status_code} {response.reason_phrase}; look at its log "
            "and try again."
        )

    def _follow(
        self, response: httpx.Response, job_id: int, emit: EventSink, cancel: CancelToken, base: Image.Image | None
    ) -> InpaintResult:
        """Read the event stream to its end, forwarding each event; returns the result or raises."""
        server_job: list[str] = []
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch_cancel, args=(cancel, server_job, done, response), daemon=True, name="remote-cancel"
        )
        watcher.start()
        extra = {"server": {"url": self.url}}
        try:
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw)
                    if data.get("event") == "accepted":
                        server_job.append(str(data.get("job")))
                        extra["server"].update(wire.plain_data(data.get("server") or {}))
                        continue
                    event = wire.event_from_json(data, extra=extra, base=base)
                except (ValueError, KeyError, TypeError, AttributeError, BadInputError) as exc:
                    raise EngineError(
                        f"The server {self.host} sent a damaged answer ({type(exc).__name__}); try again."
                    ) from exc
                if event is None:  # `alive`, or a kind this client does not know
                    continue
                if isinstance(event, JobFinished):
                    event = JobFinished(event.job_id, self._named(event.result))
                emit(event)
                if isinstance(event, JobFinished):
                    return event.result
                if isinstance(event, JobCancelled):
                    raise CancelledError(event.message)
                if isinstance(event, JobFailed):
                    raise event.error or EngineError(event.message)
        finally:
            done.set()
        # The stream ended without an outcome: the server (or a proxy on the way) dropped the job.
        raise CancelledError() if cancel.cancelled else self._lost(None)

    def _named(self, result: InpaintResult) -> InpaintResult:
        """The result with a device name that says which server made it (history shows it)."""
        server = result.extra.get("server") or {}
        node = server.get("node") if isinstance(server, dict) else None
        where = f"{self.host}" + (f", node {node}" if node and node not in self.host else "")
        base = result.extra.get("device_name") or ("CPU" if result.device == "cpu" else result.device)
        extra = {**result.extra, "device_name": f"{base} on {where}"}
        return dataclasses.replace(result, extra=extra)

    def _watch_cancel(
        self, cancel: CancelToken, server_job: list[str], done: threading.Event, response: httpx.Response
    ) -> None:
        """Runs beside the stream reader: turns the token's cancel into the server's, then a disconnect."""
        while not done.wait(_WATCH_INTERVAL_S):
            if cancel.cancelled:
                break
        else:
            return
        if server_job:
            with contextlib.suppress(httpx.HTTPError):  # the disconnect below cancels it as well
                self._client.post(wire.cancel_path(server_job[0]), timeout=CONNECT_TIMEOUT_S)
        if not done.wait(CANCEL_GRACE_S):
            response.close()  # the server cancels a job whose client went away

    def _lost(self, exc: BaseException | None, *, during_job: bool = True) -> InpaintStudioError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ConnectionLostError(
                f"Cannot reach the server at {self.url} ({_reason(exc)}); check that `inpaint-studio serve` runs "
                "there and the address, or switch the engine to This computer."
            )
        if isinstance(exc, httpx.ReadTimeout):
            what = f"it stopped answering for {self._client.timeout.read:.0f} s"
        elif exc is None:
            what = "it ended the answer without a result"
        else:
            what = "the connection broke"
        if not during_job:
            return ConnectionLostError(
                f"The server at {self.url} did not answer ({what}); check that it runs and try again."
            )
        return ConnectionLostError(
            f"The connection to the server {self.host} was lost during the job ({what}); nothing was changed: "
            "generate again (the job can be queued again) once the server is back."
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
