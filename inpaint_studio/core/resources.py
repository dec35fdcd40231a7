"""Finding files under resources/ from a source checkout, an editable install, or a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The resources/ folder: next to the frozen executable's data, or at the top of the source tree."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data here
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"resources folder not found in: {', '.join(map(str, candidates))}")


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
