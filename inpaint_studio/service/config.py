"""The service's settings: what `inpaint-studio serve` was asked for, as plain data a replica receives.

Plain data because Ray ships a deployment's arguments to every replica (and shows them in its state API):
the token travels only as its SHA-256 digest. `deployment_options()` turns the scaling wishes into Ray
Serve's options: fixed replicas, or autoscaling between --replicas and --max-replicas; a GPU fraction per
replica (two replicas at 0.5 share one GPU); how many jobs a replica accepts while it runs one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.service.limits import DEFAULT_MAX_MEGAPIXELS, DEFAULT_MAX_UPLOAD_MB, MB, UploadLimits

APP_NAME = "inpaint-studio"
DEPLOYMENT_NAME = "InpaintEngine"
DEFAULT_PORT = 8000
# Jobs a replica holds at once: one runs, the others wait for it (and keep their connection alive).
MAX_ONGOING_REQUESTS = 8


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token_digest: str | None = None
    allow_download: bool = False
    models: tuple[str, ...] = ()  # the server's own model folders / .safetensors files
    user_models: bool = True  # also the models added on the server with `inpaint-studio models --add`
    models_per_replica: int = 2  # pipelines each replica keeps loaded (LRU)
    replicas: int = 1
    max_replicas: int | None = None  # above `replicas`: autoscaling
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    extra_actor_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"The port {self.port} is not a port number; use one between 1 and 65535.")
        if self.replicas < 1:
            problems.append(f"--replicas is {self.replicas}; use at least 1.")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            problems.append(f"--max-replicas ({self.max_replicas}) is below --replicas ({self.replicas}); raise it.")
        if not 0 <= self.gpus_per_replica <= 8:
            problems.append(f"--gpus-per-replica is {self.gpus_per_replica}; use a fraction like 0.5, or 1.")
        if self.cpus_per_replica < 0:
            problems.append(f"--cpus-per-replica is {self.cpus_per_replica}; use 0 or more.")
        if self.models_per_replica < 1:
            problems.append(f"--models-per-replica is {self.models_per_replica}; use at least 1.")
        if problems:
            raise BadInputError(" ".join(problems))
        self.limits()  # checks the upload limits

    def limits(self) -> UploadLimits:
        return UploadLimits(max_bytes=int(self.max_upload_mb * MB), max_pixels=int(self.max_megapixels * 1_000_000))

    def deployment_options(self) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.cpus_per_replica, **dict(self.extra_actor_options)}
        if self.gpus_per_replica:
            actor["num_gpus"] = self.gpus_per_replica
        options: dict[str, Any] = {
            "name": DEPLOYMENT_NAME,
            "ray_actor_options": actor,
            "max_ongoing_requests": MAX_ONGOING_REQUESTS,
            # A replica finishes the job it runs before it stops (scale-down, redeploy, shutdown).
            "graceful_shutdown_timeout_s": 60,
        }
        if self.max_replicas is not None and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.replicas,
                "initial_replicas": self.replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": 1,  # one running job per replica: queued ones ask for another
                "upscale_delay_s": 10,
                "downscale_delay_s": 300,  # a loaded model is worth keeping for a while
            }
        else:
            options["num_replicas"] = self.replicas
        return options

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        data["extra_actor_options"] = dict(self.extra_actor_options)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(f"Unknown service setting(s): {', '.join(unknown)}; check the spelling.")
        values = dict(data)
        if "models" in values:
            values["models"] = tuple(str(m) for m in values["models"] or ())
        return cls(**values)
