"""The installer recipe is consistent with the app, without building anything (the build is
`bash packaging/build_linux.sh`, minutes long; see docs/packaging.md).

What can break here: a pipeline, scheduler or model class the engine loads by name that the bundle would
not contain; a trim or exclusion that removes a Qt plugin or module the app uses; resources the bundle
would miss; a desktop entry, MIME type or installer whose file types drift from what the app opens.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"


def _load(name: str, path: Path) -> ModuleType:
    # packaging/ is not a Python package (it would shadow the `packaging` distribution): load by path.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cfg() -> ModuleType:
    return _load("bundle_config", PACKAGING / "bundle_config.py")


def covered(cfg: ModuleType, module: str) -> bool:
    """A module is in the bundle when it is listed or lies inside a package collected whole."""
    return module in cfg.HIDDEN_MODULES or any(
        module == package or module.startswith(package + ".") for package in cfg.HIDDEN_PACKAGES
    )


# ---- hidden imports -------------------------------------------------------------------------------------------

# Component classes the supported families name in model_index.json (besides the scheduler).
COMPONENT_CLASSES = {
    "diffusers": ["UNet2DConditionModel", "AutoencoderKL", "VQModel", "PriorTransformer", "ControlNetModel"],
    "transformers": [
        "CLIPTextModel",
        "CLIPTextModelWithProjection",
        "CLIPTokenizer",
        "CLIPVisionModelWithProjection",
        "CLIPImageProcessor",
    ],
}


def test_every_pipeline_the_engine_detects_is_bundled(cfg):
    import diffusers
    from diffusers.pipelines.auto_pipeline import AUTO_INPAINT_PIPELINES_MAPPING

    from inpaint_studio.engine.families import PIPELINE_FAMILIES

    names = set(PIPELINE_FAMILIES)
    # Latent-blending models (SD, SDXL base) load through AutoPipelineForInpainting's mapping.
    supported = {"stable-diffusion", "stable-diffusion-xl", "kandinsky22", "stable-diffusion-controlnet"}
    names |= {cls.__name__ for key, cls in AUTO_INPAINT_PIPELINES_MAPPING.items() if key in supported}
    missing = {name: getattr(diffusers, name).__module__ for name in sorted(names)}
    missing = {name: module for name, module in missing.items() if not covered(cfg, module)}
    assert not missing, f"pipelines loaded by name but not bundled: {missing}"


def test_every_named_sampler_is_bundled(cfg):
    import diffusers

    from inpaint_studio.engine.schedulers import SCHEDULERS

    modules = {class_name: getattr(diffusers, class_name).__module__ for class_name, _ in SCHEDULERS.values()}
    missing = {name: module for name, module in modules.items() if not covered(cfg, module)}
    assert not missing, f"samplers not bundled: {missing}"
    # Any scheduler a user's model_index.json names, not only the sampler list: the whole package.
    assert "diffusers.schedulers" in cfg.HIDDEN_PACKAGES


def test_every_component_class_of_the_supported_families_is_bundled(cfg):
    import diffusers
    import transformers

    libraries = {"diffusers": diffusers, "transformers": transformers}
    modules = {
        name: getattr(libraries[library], name).__module__
        for library, names in COMPONENT_CLASSES.items()
        for name in names
    }
    missing = {name: module for name, module in modules.items() if not covered(cfg, module)}
    assert not missing, f"model components not bundled: {missing}"


def test_the_app_itself_and_the_loader_entry_points_are_listed(cfg):
    assert "inpaint_studio" in cfg.HIDDEN_PACKAGES  # lazily imported UI and engine modules
    assert "diffusers.pipelines.auto_pipeline" in cfg.HIDDEN_MODULES
    for package in cfg.HIDDEN_PACKAGES:
        assert importlib.util.find_spec(package) is not None, f"{package} does not exist (renamed upstream?)"


def test_the_spec_bundles_what_entry_py_imports():
    spec_text = (PACKAGING / "inpaint-studio.spec").read_text(encoding="utf-8")
    ast.parse(spec_text)  # a syntax error would only show in a 10-minute build
    entry = ast.parse((PACKAGING / "entry.py").read_text(encoding="utf-8"))
    local = {p.stem for p in PACKAGING.glob("*.py")}
    imported = {alias.name for node in ast.walk(entry) if isinstance(node, ast.Import) for alias in node.names} & local
    assert imported == {"smoke", "startup_probe"}
    hidden = re.search(r"hiddenimports = \[(.*?)\]", spec_text).group(1)
    for name in imported:
        assert f'"{name}"' in hidden, f"entry.py imports {name}, which the spec does not list"
    assert "entry.py" in spec_text and "bundle_config" in spec_text


def test_windowed_executable_gets_a_log_file_for_its_missing_console(monkeypatch, tmp_path):
    entry = _load("inpaint_entry", PACKAGING / "entry.py")
    monkeypatch.setattr("platformdirs.user_log_dir", lambda *args, **kwargs: str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "stderr", None)
    monkeypatch.setattr(sys, "stdout", None)
    log_file = entry.ensure_streams()
    assert log_file == tmp_path / "logs" / entry.LOG_NAME
    print("engine start-up failed", file=sys.stderr)  # tqdm and logging write here
    sys.stderr.flush()
    assert "engine start-up failed" in log_file.read_text(encoding="utf-8")
    sys.stderr.close()


def test_console_streams_are_left_alone():
    entry = _load("inpaint_entry", PACKAGING / "entry.py")
    before = (sys.stdout, sys.stderr)
    assert entry.ensure_streams() is None
    assert (sys.stdout, sys.stderr) == before


# ---- exclusions and trims never touch what the app uses -----------------------------------------------------


def _app_imports() -> set[str]:
    names = set()
    for path in (ROOT / "inpaint_studio").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_excludes_do_not_remove_a_module_the_app_imports(cfg):
    used = _app_imports()
    clashes = {
        name for name in used for excluded in cfg.EXCLUDES if name == excluded or name.startswith(excluded + ".")
    }
    assert not clashes, f"excluded but imported by the app: {sorted(clashes)}"


@pytest.mark.parametrize(
    "kept",
    [
        "torch/lib/libtorch_cpu.so",
        "torch/lib/libc10.so",
        "torch/lib/libgomp.so.1",
        "numpy.libs/libgfortran-040039e1.so.5.0.0",  # wheels' own copies (hashed names) stay
        "torch/bin/torch_shm_manager",
        "torch/testing/_comparison.py",
        "torch/testing/_internal/logging_tensor.py",  # torch.utils.checkpoint imports it
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/platforms/qwindows.dll",
        "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
        "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/Qt/plugins/imageformats/libqwebp.so",
        "PySide6/Qt/plugins/imageformats/libqtiff.so",
        "PySide6/Qt/plugins/imageformats/libqsvg.so",
        "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
        "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
        "PySide6/Qt/lib/libQt6XcbQpa.so.6",
        "PySide6/Qt/translations/qtbase_de.qm",
        "resources/models.json",
        "resources/icons/inpaint-studio-256.png",
    ],
)
def test_trims_keep_what_the_app_needs(cfg, kept):
    assert not cfg.trimmed(kept)
    assert not cfg.trimmed(kept.replace("/", "\\"))


@pytest.mark.parametrize(
    "dropped",
    [
        "torch/test/test_api",
        "torch/bin/TCPStoreTest",
        "torch/include/ATen/ATen.h",
        "PySide6/Qt/plugins/imageformats/libqpdf.so",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
        "libcudart.so",  # a host CUDA toolkit's runtime, found by PyInstaller's ctypes scan
        "libstdc++.so.6",  # the system's C++ runtime stays in charge (GPU drivers need its newest symbols)
        "x/y.pyi",
    ],
)
def test_trims_drop_build_and_test_files(cfg, dropped):
    assert cfg.trimmed(dropped)


# ---- resources ------------------------------------------------------------------------------------------------


def test_resources_are_bundled_where_the_path_helper_looks(cfg, monkeypatch, tmp_path):
    assert ("resources", "resources") in cfg.DATAS
    for name in cfg.RESOURCE_FILES:
        assert (ROOT / name).is_file(), name
    for size in cfg.ICON_SIZES:
        assert (RESOURCES / "icons" / f"{cfg.APP_NAME}-{size}.png").is_file(), size
    # Frozen: resources_dir() must find sys._MEIPASS/resources, the folder DATAS copies to.
    from inpaint_studio.core import resources

    (tmp_path / "resources").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"


def test_icon_pngs_have_their_sizes(cfg):
    from PIL import Image

    for size in cfg.ICON_SIZES:
        with Image.open(RESOURCES / "icons" / f"{cfg.APP_NAME}-{size}.png") as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
    ET.parse(RESOURCES / "icons" / f"{cfg.APP_NAME}.svg")


# ---- desktop integration ----------------------------------------------------------------------------------


def test_desktop_entry_is_valid_and_lists_the_app_file_types(cfg):
    desktop = RESOURCES / "inpaint-studio.desktop"
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run([validator, str(desktop)], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(desktop, encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == cfg.APP_NAME and entry["Exec"].split()[1] in ("%F", "%U")
    assert entry["Icon"] == cfg.APP_NAME
    assert entry["Terminal"] == "false"
    assert entry["StartupWMClass"] == cfg.APP_NAME  # matches QGuiApplication.setDesktopFileName
    mime = [m for m in entry["MimeType"].split(";") if m]
    assert mime == [*cfg.IMAGE_MIME_TYPES, cfg.PROJECT_MIME]


def test_desktop_file_name_matches_the_app():
    source = (ROOT / "inpaint_studio" / "ui" / "app.py").read_text(encoding="utf-8")
    assert 'setDesktopFileName("inpaint-studio")' in source


def test_project_mime_type_definition(cfg):
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(RESOURCES / "inpaint-studio-mime.xml").getroot()
    types = root.findall("m:mime-type", ns)
    assert [t.get("type") for t in types] == [cfg.PROJECT_MIME]
    assert [g.get("pattern") for g in types[0].findall("m:glob", ns)] == ["*" + cfg.PROJECT_SUFFIX]


def test_file_types_agree_with_what_the_window_opens(cfg):
    from inpaint_studio.ui.window.files import IMAGE_SUFFIXES

    assert set(cfg.IMAGE_SUFFIXES) == IMAGE_SUFFIXES
    iss = (PACKAGING / "windows" / "inpaint-studio.iss").read_text(encoding="utf-8")
    open_with = set(re.findall(r"Software\\Classes\\(\.\w+)\\OpenWithProgids", iss))
    assert open_with == IMAGE_SUFFIXES
    assert rf"Software\Classes\{cfg.PROJECT_SUFFIX}" in iss
    spec = (PACKAGING / "inpaint-studio.spec").read_text(encoding="utf-8")
    for uti in ("public.png", "public.jpeg", "org.webmproject.webp", "public.tiff", "com.microsoft.bmp"):
        assert uti in spec


def test_deb_installs_the_desktop_files():
    script = (PACKAGING / "linux" / "build_deb.sh").read_text(encoding="utf-8")
    for needed in (
        "usr/share/applications/inpaint-studio.desktop",
        "usr/share/mime/packages/inpaint-studio.xml",
        "hicolor/scalable/apps/inpaint-studio.svg",
        "ln -s /opt/inpaint-studio/inpaint-studio",
    ):
        assert needed in script
    # The xcb platform plugin's system libraries (Qt >= 6.5 needs libxcb-cursor0).
    for package in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1", "libdbus-1-3"):
        assert package in script


# ---- scripts and CI -------------------------------------------------------------------------------------------


SHELL_SCRIPTS = [
    PACKAGING / "build_linux.sh",
    PACKAGING / "linux" / "build_deb.sh",
    PACKAGING / "linux" / "chroot_test.sh",
    PACKAGING / "macos" / "build_macos.sh",
]


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_are_strict_and_parse(script):
    text = script.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_ci_workflow_builds_every_platform_and_runs_the_scripts():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8"))
    include = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    systems = {item["os"].split("-")[0] for item in include}
    assert systems == {"ubuntu", "windows", "macos"}
    assert {item["variant"] for item in include if item["os"].startswith(("ubuntu", "windows"))} == {"cpu", "cuda"}
    steps = " ".join(str(step.get("run", "")) for step in workflow["jobs"]["build"]["steps"])
    for script in ("build_linux.sh", "chroot_test.sh", "build_windows.ps1", "build_macos.sh"):
        assert script in steps
        assert list(PACKAGING.rglob(script)), script
