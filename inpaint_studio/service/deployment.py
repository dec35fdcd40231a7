"""The engine as one Ray Serve deployment: FastAPI routes (service/jobs.py), model multiplexing, a cancel board.

Each replica keeps an LRU of engines keyed by model reference (`serve.multiplexed`, size
--models-per-replica), each engine holding its loaded pipeline; an evicted one releases its memory. Clients
send the job's model in the `serve_multiplexed_model_id` header, so Ray Serve routes a job to a replica
that already has its model loaded when there is one.

`build(args)` is the application builder for Ray Serve config files (KubeRay's RayService, `serve run`):
``import_path: inpaint_studio.service.deployment:build`` with the same settings as `inpaint-studio serve`
(service/config.py) under ``args``. `inpaint-studio serve` (service/launch.py) deploys the same thing.
"""

# No `from __future__ import annotations`: FastAPI reads the route methods' annotations as objects.
import contextlib
import logging
import socket
from collections.abc import Mapping
from typing import Any

import ray
from fastapi import FastAPI, Request
from ray import serve

from inpaint_studio import __version__
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.engine import wire
from inpaint_studio.service.config import APP_NAME, ServiceConfig
from inpaint_studio.service.jobs import Identity, JobService
from inpaint_studio.service.policy import ModelPolicy

log = logging.getLogger(__name__)

BOARD_NAME = "inpaint-studio-cancel-board"
BOARD_NAMESPACE = "inpaint-studio"
MAX_BOARD_ENTRIES = 10_000

app = FastAPI(title="Inpaint Studio engine", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)


@ray.remote(num_cpus=0)
class CancelBoardActor:
    """Explicit cancels, seen by every replica: the job's replica may not be the one the cancel reached."""

    def __init__(self) -> None:
        self._jobs: dict[str, bool] = {}

    def register(self, job: str) -> None:
        if len(self._jobs) >= MAX_BOARD_ENTRIES:  # jobs of replicas that died without forgetting them
            for old in list(self._jobs)[: MAX_BOARD_ENTRIES // 2]:
                del self._jobs[old]
        self._jobs[job] = False

    def cancel(self, job: str) -> bool:
        if job not in self._jobs:
            return False
        self._jobs[job] = True
        return True

    def is_cancelled(self, job: str) -> bool:
        return self._jobs.get(job, False)

    def forget(self, job: str) -> None:
        self._jobs.pop(job, None)


class _Board:
    """The board actor behind service/jobs.py's CancelBoard protocol (awaitable calls)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def register(self, job: str) -> None:
        await self._handle.register.remote(job)

    async def cancel(self, job: str) -> bool:
        return bool(await self._handle.cancel.remote(job))

    async def is_cancelled(self, job: str) -> bool:
        return bool(await self._handle.is_cancelled.remote(job))

    async def forget(self, job: str) -> None:
        await self._handle.forget.remote(job)


def cancel_board() -> Any:
    """The cluster's cancel board, created by the first replica that asks (detached: it outlives replicas)."""
    return CancelBoardActor.options(
        name=BOARD_NAME, namespace=BOARD_NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote()


def remove_cancel_board() -> None:
    with contextlib.suppress(ValueError):  # never created
        ray.kill(ray.get_actor(BOARD_NAME, namespace=BOARD_NAMESPACE))


class EngineSlot:
    """One model's engine in a replica's LRU; Ray Serve calls __del__ when it evicts it."""

    def __init__(self, allow_download: bool) -> None:
        from inpaint_studio.engine.runner import Engine

        self.engine = Engine(allow_download=allow_download)  # never pickled checkpoints (the policy too)

    def __del__(self) -> None:
        self.engine.release()


@serve.deployment
@serve.ingress(app)
class InpaintEngine:
    """One replica: see the module docstring."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from inpaint_studio.engine.devices import describe_device, pick_device

        config = ServiceConfig.from_dict(settings)
        device = pick_device("auto")  # Ray gives the replica its GPU (CUDA_VISIBLE_DEVICES): cuda:0 here
        context = serve.get_replica_context()
        identity = Identity(
            node=socket.gethostname(),
            replica=str(context.replica_tag),
            device=device,
            device_name=describe_device(device),
            actor=context.replica_id.to_full_id_str(),
        )
        allow_download = config.allow_download

        async def load(model_id: str) -> EngineSlot:
            return EngineSlot(allow_download)

        # Set up per replica (the LRU's size is a setting), so wired here rather than as a decorated method.
        self._engines = serve.multiplexed(max_num_models_per_replica=config.models_per_replica)(load)
        self._loader = load  # Ray Serve keeps the LRU on the undecorated function
        self._board = cancel_board()
        self.jobs = JobService(
            engine_for=self._engines,
            identity=identity,
            policy=ModelPolicy(config.models, allow_download=allow_download, user_models=config.user_models),
            limits=config.limits(),
            token_digest=config.token_digest,
            board=_Board(self._board),
            loaded_models=self._loaded,
        )

    def _loaded(self) -> list[str]:
        wrapper = getattr(self._loader, "__serve_multiplex_wrapper", None)
        return list(getattr(wrapper, "models", {}) or [])

    @app.post(wire.JOBS_PATH)
    async def submit(self, request: Request) -> Any:
        return await self.jobs.submit(request)

    @app.post(wire.JOBS_PATH + "/{server_job}/cancel")
    async def cancel(self, server_job: str, request: Request) -> Any:
        return await self.jobs.cancel(request, server_job)

    @app.get(wire.MODELS_PATH)
    async def models(self, request: Request) -> Any:
        return await self.jobs.models(request)

    @app.get(wire.HEALTH_PATH)
    async def health(self, request: Request) -> Any:
        return await self.jobs.health(request)


def application(config: ServiceConfig) -> Any:
    """The bound Serve application for these settings."""
    return InpaintEngine.options(**config.deployment_options()).bind(config.to_dict())


def build(args: Mapping[str, Any]) -> Any:
    """Application builder for Ray Serve config files: `args` are ServiceConfig's fields, plus `token_file`
    (read here, on the node that builds the app) instead of a digest."""
    from inpaint_studio.engine.remote import read_token_file
    from inpaint_studio.service import auth

    values = dict(args)
    token_file = values.pop("token_file", None)
    if not token_file:
        raise BadInputError(
            "A deployment from a Serve config listens wherever its http_options say, so it needs a token: set "
            "args.token_file to a file that holds one."
        )
    token = read_token_file(token_file)
    auth.check_token_strength(token)
    values["token_digest"] = auth.digest(token)
    return application(ServiceConfig.from_dict(values))


__all__ = ["APP_NAME", "InpaintEngine", "application", "build"]
