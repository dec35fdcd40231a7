"""Shared test set-up: headless Qt, offline Hugging Face, and the tiny-model fixtures."""

from __future__ import annotations

import os

# Set before anything imports Qt or huggingface_hub.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["tests.tiny_models"]
