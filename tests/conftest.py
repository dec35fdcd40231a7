"""Shared test set-up: headless Qt, offline Hugging Face, and the tiny-model fixtures."""

from __future__ import annotations

import os

import pytest

# Set before anything imports Qt or huggingface_hub.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# One torch/OpenMP thread (before torch is imported; subprocesses inherit it). The tiny test models are too
# small for intra-op parallelism to pay off, and on a busy 2-core machine OpenMP's spin-waiting made one UNet
# call take 1.6 s with two threads against 40 ms with one. Results do not depend on it: every comparison is
# between runs made under the same setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.tiny_models", "tests.tiny_addons", "tests.tiny_sam"]


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The user's model list (core/user_models.py) of each test is its own (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("INPAINT_STUDIO_CONFIG_DIR", str(folder))
    return folder


def _spandrel_problem() -> str | None:
    """Why spandrel-based models cannot run here (None when they can)."""
    try:
        import spandrel  # noqa: F401
    except (ImportError, RuntimeError) as exc:  # RuntimeError: a torchvision built for another torch
        return f"spandrel is not usable here ({type(exc).__name__}: {str(exc)[:80]})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`vision` tests need the optional spandrel + torchvision; .ci/run runs them in .venv-vision, where
    INPAINT_STUDIO_REQUIRE_VISION=1 turns a missing spandrel into a failure instead of a skip."""
    vision = [item for item in items if item.get_closest_marker("vision")]
    if not vision:
        return
    problem = _spandrel_problem()
    if problem is None:
        return
    if os.environ.get("INPAINT_STUDIO_REQUIRE_VISION") == "1":
        raise pytest.UsageError(f"INPAINT_STUDIO_REQUIRE_VISION=1 but {problem}")
    for item in vision:
        item.add_marker(pytest.mark.skip(reason=f"{problem}; .ci/run runs it in .venv-vision"))
