"""A plain wheel (`pip install .`) is a working app: every module, and resources/ inside the package.

resources/ sits at the top of the repository; pyproject.toml ships it as the package inpaint_studio._resources
and lists the packages by hand (setuptools' `find` cannot add a folder mapped from elsewhere), so these tests
check that list and an installed wheel. Offline: no build isolation, no index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "inpaint_studio"
RESOURCES = ROOT / "resources"
PACKAGED_RESOURCES = "inpaint_studio/_resources"
# What setuptools reads to build the wheel (not packaging/build/, which can hold a gigabyte bundle).
BUILD_INPUTS = ("pyproject.toml", "README.md", "inpaint_studio", "resources")

# Run in a fresh interpreter that sees only the installed wheel: what an installed app would report.
CHECK = """
import json
import inpaint_studio
from inpaint_studio.core.resources import resources_dir
from inpaint_studio.engine.catalog import catalog
print(json.dumps({
    "package": inpaint_studio.__file__,
    "resources": str(resources_dir()),
    "catalog": [entry.id for entry in catalog()],
}))
"""


def _files(folder: Path, suffix: str = "") -> list[Path]:
    return [p for p in folder.rglob(f"*{suffix}") if p.is_file() and "__pycache__" not in p.parts]


def test_the_package_list_matches_the_source_tree():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {"inpaint_studio._resources"} | {
        ".".join(("inpaint_studio", "_resources", *p.relative_to(RESOURCES).parts))
        for p in RESOURCES.rglob("*")
        if p.is_dir() and p.name != "__pycache__"
    }
    modules = {".".join(p.parent.relative_to(ROOT).parts) for p in _files(PACKAGE, ".py")}
    missing = sorted((modules | folders) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert not sorted(listed - modules - folders), "pyproject.toml lists packages that do not exist"
    assert config["package-dir"] == {"inpaint_studio._resources": "resources"}


def _pip(*args: str, cwd: Path) -> None:
    command = [sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "--disable-pip-version-check", "-q"]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_installed_wheel_has_every_module_and_lists_the_models(tmp_path):
    # Built from a copy: an in-tree build writes build/ and *.egg-info into the checkout, and setuptools
    # reuses a stale build/lib (a module deleted from the tree would still ship).
    source, dist, site, elsewhere = (tmp_path / name for name in ("source", "dist", "site", "elsewhere"))
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _pip("wheel", str(source), "--no-build-isolation", "-w", str(dist), cwd=tmp_path)
    (wheel,) = dist.glob("inpaint_studio-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [
        p.relative_to(ROOT).as_posix() for p in _files(PACKAGE, ".py") if p.relative_to(ROOT).as_posix() not in names
    ]
    missing += [
        p.relative_to(ROOT).as_posix()
        for p in _files(RESOURCES)
        if f"{PACKAGED_RESOURCES}/{p.relative_to(RESOURCES).as_posix()}" not in names
    ]
    assert not missing, f"not in the wheel: {missing}"

    _pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # not the checkout (the test run may have it on the path)
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["package"]).resolve().is_relative_to(site.resolve()), report["package"]
    assert Path(report["resources"]).resolve() == (site / PACKAGED_RESOURCES).resolve()
    models = json.loads((RESOURCES / "models.json").read_text(encoding="utf-8"))["models"]
    assert report["catalog"] == [model["id"] for model in models]
    assert report["catalog"]
