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

pytest_plugins = ["tests.tiny_models"]


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The user's model list (core/user_models.py) of each test is its own (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("INPAINT_STUDIO_CONFIG_DIR", str(folder))
    return folder
