"""A private Hugging Face cache laid out as huggingface_hub lays it out, for add-ons "downloaded" offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REVISION = "b" * 40


def put_in_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Place `files` (path in the repository -> local file) in `cache` as the snapshot of `repo_id`."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    for name, source in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    (repo / "blobs").mkdir(exist_ok=True)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty private hub cache that huggingface_hub reads from for the test."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache
