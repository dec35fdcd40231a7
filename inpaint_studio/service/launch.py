"""`inpaint-studio serve`: start (or join) Ray, deploy the engine on Ray Serve, wait for a signal, stop cleanly.

Without --ray-address a private single-node Ray starts here (no dashboard, no usage statistics) and stops
with the command. With an address the application is deployed on that cluster; stopping removes this
application (and the cancel board), and leaves the cluster and its other Serve applications running.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
from ray import serve

from inpaint_studio.core.errors import EngineError
from inpaint_studio.service.cluster import connect
from inpaint_studio.service.config import APP_NAME, ServiceConfig
from inpaint_studio.service.deployment import application, remove_cancel_board

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 600.0  # replicas import torch and may wait for a GPU to be free


def deploy(config: ServiceConfig) -> str:
    """Deploy (or update) the application; returns its URL once every replica is ready."""
    serve.start(http_options={"host": config.host, "port": config.port})
    try:
        serve.run(application(config), name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as exc:  # Ray Serve's own message: replicas that could not start
        raise EngineError(f"The engine could not start on Ray Serve ({str(exc)[:200]}); see the log above.") from exc
    _wait_until_running()
    shown = "localhost" if config.host in ("127.0.0.1", "::1") else config.host
    return f"http://{shown}:{config.port}"


def _wait_until_running() -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status = serve.status().applications.get(APP_NAME)
        if status is not None and status.status == "RUNNING":
            return
        if status is not None and status.status in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise EngineError(f"The engine could not start on Ray Serve: {status.message[:300]}")
        time.sleep(0.5)
    raise EngineError(f"The engine was not ready after {READY_TIMEOUT_S:.0f} s; see the log above.")


def undeploy(started_ray: bool) -> None:
    """Remove the application; stop Serve and Ray too when this process started them."""
    try:
        if started_ray:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
        remove_cancel_board()
    finally:
        if ray.is_initialized():
            ray.shutdown()


def serve_until_signal(
    config: ServiceConfig, address: str | None, on_ready: Callable[[str], None], stop: threading.Event | None = None
) -> int:
    """Deploy, call `on_ready(url)`, wait for SIGINT/SIGTERM (or `stop`), then shut down; returns 0."""
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    started = False
    try:
        started = connect(address)
        if threading.current_thread() is threading.main_thread():  # after ray.init, which sets its own
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda _signum, _frame: stop.set())
        url = deploy(config)
        on_ready(url)
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if ray.is_initialized():
            undeploy(started)
    return 0
