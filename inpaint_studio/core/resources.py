"""Finding files under resources/ from a frozen bundle, an installed wheel, or a source checkout.

The folder lives at the top of the repository. A PyInstaller bundle copies it to `sys._MEIPASS/resources`
(packaging/bundle_config.py); a wheel carries it inside the package as `inpaint_studio/_resources`
(pyproject.toml maps the package `inpaint_studio._resources` to resources/); a source checkout and an
editable install read it in place.
"""

from __future__ import annotations

import importlib.resources
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGED = "_resources"  # the folder's name inside the installed package


def _candidates() -> Iterator[Path]:
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data here
    if bundle:
        yield Path(bundle) / "resources"
    installed = importlib.resources.files("inpaint_studio").joinpath(PACKAGED)
    if isinstance(installed, Path):  # a zip import gives a Traversable that is no folder on disk
        yield installed
    # Last: next to an installed package this could be another distribution's top-level "resources".
    yield Path(__file__).resolve().parents[2] / "resources"


def resources_dir() -> Path:
    """The resources/ folder: the frozen bundle's copy, the installed package's, or the source tree's."""
    tried = []
    for path in _candidates():
        if path.is_dir():
            return path
        tried.append(path)
    raise FileNotFoundError(f"resources folder not found in: {', '.join(map(str, tried))}")


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
