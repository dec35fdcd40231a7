"""Ray for the service tests: one local Ray (2 CPUs) and one Serve application serve every module that needs
them; the simulated two-node cluster (test_two_nodes.py, collected last) replaces it at the end.

Sandbox-safe: no dashboard, no usage statistics, free ports picked here; Serve and Ray are shut down at the
end of the session even when tests fail. Tests that start Ray carry the `cluster` mark and are skipped where
the `cluster` extra is missing (a desktop install), unless INPAINT_STUDIO_REQUIRE_CLUSTER=1 (CI).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.helpers import TOKEN, Server, free_port

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def cluster_problem() -> str | None:
    try:
        import python_multipart  # noqa: F401
        import ray
        import ray.data  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as exc:
        return f"the cluster extra is not installed ({exc})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("cluster")]
    problem = cluster_problem() if marked else None
    if problem is None:
        return
    if os.environ.get("INPAINT_STUDIO_REQUIRE_CLUSTER") == "1":
        raise pytest.UsageError(f"INPAINT_STUDIO_REQUIRE_CLUSTER=1 but {problem}")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=problem))


def start_local_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)


def stop_ray() -> None:
    import ray

    with contextlib.suppress(Exception):
        from ray import serve

        if ray.is_initialized():
            serve.shutdown()
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Stops whatever Ray the session started, at its end, whatever happened."""
    yield
    stop_ray()


@pytest.fixture
def local_ray(ray_session: None) -> str:
    """A running local Ray (started once, or again after the two-node module); its GCS address."""
    import ray

    start_local_ray()
    return str(ray.get_runtime_context().gcs_address)


_SERVER: list[Server] = []


@pytest.fixture
def server(local_ray: str, tiny_sd_inpaint: Path, tiny_sd: Path) -> Server:
    """The engine on Ray Serve at 127.0.0.1 with a token, the tiny models and small upload limits."""
    from ray import serve

    from inpaint_studio.service import auth
    from inpaint_studio.service.config import APP_NAME, ServiceConfig
    from inpaint_studio.service.launch import deploy

    status = serve.status().applications.get(APP_NAME) if _SERVER else None
    if status is not None and status.status == "RUNNING":
        return _SERVER[0]
    config = ServiceConfig(
        port=free_port(),
        token_digest=auth.digest(TOKEN),
        models=(str(tiny_sd_inpaint), str(tiny_sd)),
        user_models=False,
        cpus_per_replica=0,  # leaves the 2 CPUs to the batch tests' actors
        max_upload_mb=2,
        max_megapixels=0.5,
    )
    url = deploy(config)
    _SERVER[:] = [Server(url, TOKEN, (tiny_sd_inpaint, tiny_sd))]
    return _SERVER[0]
