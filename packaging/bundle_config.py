"""What goes into the frozen bundle: hidden imports, data files, metadata, exclusions and trims.

Plain data plus small helpers, no PyInstaller import, so that tests/packaging/test_recipe.py can check the
recipe without building anything. The spec (inpaint-studio.spec) reads everything from here.

Why hidden imports at all: diffusers and transformers expose their classes through lazy modules
(`diffusers.UNet2DConditionModel` imports `diffusers.models.unets.unet_2d_condition` on first access, by
name), and a model folder names its component classes in JSON (`"scheduler": ["diffusers",
"EulerDiscreteScheduler"]`). PyInstaller's static analysis sees neither, so every module that can be loaded
that way must be listed. Two sources feed the list:

* HIDDEN_PACKAGES below: whole packages collected with every submodule. They cover what a *user's* model may
  name (any diffusers scheduler or model class, the pipelines of every family the app supports, the CLIP
  text/vision encoders and tokenizers). tests/packaging/test_recipe.py checks this list against the engine.
* packaging/trace_imports.py (run by the build): loads one tiny model of every supported family through the
  real engine and records every diffusers/transformers/... module that got imported, including the ones
  `diffusers.pipelines.auto_pipeline` pulls in at import time.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

APP_NAME = "inpaint-studio"  # executable and folder name
DISPLAY_NAME = "Inpaint Studio"
BUNDLE_ID = "local.inpaint-studio.InpaintStudio"
PROJECT_MIME = "application/x-inpaint-studio"
PROJECT_SUFFIX = ".inpaint"
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/tiff", "image/bmp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")

# Packages collected with all their submodules (see the module docstring).
HIDDEN_PACKAGES = (
    "inpaint_studio",  # every module of the app, including the ones the UI imports lazily
    "diffusers.schedulers",  # any scheduler a model_index.json or the sampler list names
    "diffusers.models",  # any model class a model_index.json names (UNet, VAE, VQ, prior, ControlNet...)
    "diffusers.loaders",  # from_single_file and LoRA/textual-inversion mixins, imported by name
    "diffusers.pipelines.stable_diffusion",  # SD 1.x/2.x inpainting and latent-blending (4-channel) models
    "diffusers.pipelines.stable_diffusion_xl",  # SDXL inpainting, base and refiner
    "diffusers.pipelines.kandinsky2_2",  # Kandinsky 2.2 inpaint combined pipeline (prior + decoder)
    "diffusers.pipelines.kandinsky",  # the 2.2 combined pipeline reuses its text encoder module
    "diffusers.pipelines.controlnet",  # SD ControlNet inpainting
    "transformers.models.clip",  # text encoders, tokenizers, image encoder/processor of all those families
    "transformers.models.sam",  # the Select tool: SamModel / SamProcessor (SAM, SlimSAM), reached lazily
    "transformers.models.sam2",  # SAM 2 for the Select tool (its image processor also needs torchvision)
)

# Single modules imported by name that are not inside the packages above.
HIDDEN_MODULES = (
    "diffusers.pipelines.auto_pipeline",  # AutoPipelineForInpainting: imports every family at import time
    "diffusers.pipelines.pipeline_loading_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "transformers.models.auto.image_processing_auto",
    "transformers.models.auto.feature_extraction_auto",
    "transformers.models.auto.processing_auto",
    "PIL.WebPImagePlugin",  # Pillow registers its image plugins by name in Image.init()
    "PIL.TiffImagePlugin",
    "PIL.BmpImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
)

# Top-level packages whose modules trace_imports.py records (anything else is either found by static
# analysis, like numpy, or must not be bundled, like pytest).
TRACE_PACKAGES = (
    "diffusers",
    "transformers",
    "tokenizers",
    "safetensors",
    "huggingface_hub",
    "accelerate",
    "compel",
    "inpaint_studio",
    "PIL",
    "cv2",
    "qasync",
)

# Packages whose version diffusers/transformers/accelerate look up with importlib.metadata at run time:
# without their dist-info in the bundle they count as "not installed" and features switch off silently.
METADATA_PACKAGES = (
    "inpaint-studio",
    "torch",
    "diffusers",
    "transformers",
    "accelerate",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "compel",
    "numpy",
    "pillow",
    "opencv-contrib-python-headless",
    "PySide6_Essentials",
    "qasync",
    "platformdirs",
    "tqdm",
    "regex",
    "requests",
    "packaging",
    "filelock",
    "pyyaml",
    "importlib_metadata",
    "psutil",
)

# Never bundled: test and development tools (the build venv has pytest to build the tiny smoke-test models),
# GUI toolkits and notebooks that optional code paths mention, and Qt modules the app does not use.
EXCLUDES = (
    "pytest",
    "_pytest",
    "hypothesis",
    "pluggy",
    "tests",
    "skimage",
    "matplotlib",
    "tkinter",
    "_tkinter",
    "IPython",
    "jupyter",
    "notebook",
    "tensorboard",
    "torch.utils.tensorboard",
    "torchvision",
    "onnx",
    "jax",
    "flax",
    "tensorflow",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtNetwork",
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
    "PySide6.QtPdf",
    "PySide6.QtSql",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtUiTools",
    "PySide6.QtXml",
    "PySide6.QtTest",
    "PySide6.QtConcurrent",
    "PySide6.QtDBus",
    "PySide6.QtPrintSupport",
)

# Files dropped from the collected binaries and data (paths inside the bundle, fnmatch patterns, "/"-separated).
# Each entry says why it is safe to drop; the smoke test is what proves it.
TRIM_PATTERNS = (
    "torch/test/*",  # C++ unit-test binaries of libtorch (83 MB)
    "torch/bin/test_*",  # more C++ tests; torch/bin/torch_shm_manager stays (shared-memory tensors)
    "torch/bin/*Test",  # FileStoreTest, HashStoreTest, TCPStoreTest: torch.distributed's C++ tests
    "torch/bin/protoc*",  # the protobuf compiler, a build tool
    "torch/include/*",  # C++ headers for building extensions
    "torch/share/cmake/*",  # CMake files for building extensions
    "torch/lib/libjitbackend_test*",
    "torch/lib/libtorchbind_test*",
    "torch/lib/libbackend_with_compiler*",
    "torch/lib/libaoti_custom_ops*",
    # Not torch/testing/_internal: torch.utils.checkpoint imports its logging_tensor at import time.
    "*.pyi",  # type stubs
    "PySide6/Qt/translations/qtwebengine*",
    "PySide6/Qt/translations/designer*",
    "PySide6/Qt/translations/linguist*",
    "PySide6/Qt/translations/assistant*",
    "PySide6/Qt/translations/qt_help*",
    "PySide6/Qt/plugins/sqldrivers/*",
    "PySide6/Qt/plugins/designer/*",
    "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/qmllint/*",
    "PySide6/Qt/plugins/platforms/libqeglfs*",  # embedded-device platforms (no window system)
    "PySide6/Qt/plugins/platforms/libqlinuxfb*",
    "PySide6/Qt/plugins/platforms/libqvnc*",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay*",
    "PySide6/Qt/plugins/platforms/libqminimalegl*",
    "PySide6/Qt/plugins/egldeviceintegrations/*",  # only used by eglfs
    "PySide6/Qt/plugins/generic/*",  # evdev/tuio input for eglfs/linuxfb; X11 and Wayland bring their own
    "PySide6/Qt/plugins/wayland-graphics-integration-client/*-server*",  # compositor-side buffer sharing
    "PySide6/Qt/plugins/imageformats/*qpdf*",  # PDF pages as images: pulls in the 10 MB QtPdf library
    "PySide6/Qt/lib/libQt6EglFS*",  # support libraries of the eglfs platform trimmed above
    "PySide6/Qt/lib/libQt6EglFs*",
    "PySide6/Qt/lib/libQt6Pdf*",
    "PySide6/Qt/lib/libQt6Qml*",
    "PySide6/Qt/lib/libQt6Quick*",
    "PySide6/Qt/qml/*",
    # Picked up from the build machine by PyInstaller's ctypes scan (a CUDA toolkit in /usr/local): never
    # the right library for the user's machine. The CUDA variant's runtime comes from the nvidia-* wheels.
    "libcudart.so*",
    # The C++ runtime stays the system's: a bundled older libstdc++ breaks GPU drivers (Mesa) that the
    # system loads into the process and that need newer GLIBCXX symbols. The .deb depends on libstdc++6.
    "libstdc++.so*",
    "libgcc_s.so*",
)

# Data folders and files copied into the bundle: (source relative to the repository, folder in the bundle).
# resources/ is found at run time through inpaint_studio.core.resources (sys._MEIPASS/resources).
DATAS = (("resources", "resources"),)
RESOURCE_FILES = (
    "resources/models.json",
    "resources/icons/inpaint-studio.svg",
    "resources/icons/inpaint-studio-256.png",
)
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def trimmed(dest: str) -> bool:
    """True when a bundle path matches TRIM_PATTERNS (dest as PyInstaller gives it, any separator)."""
    path = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(path, pattern) for pattern in TRIM_PATTERNS)


def read_traced(path: Path) -> list[str]:
    """Module names recorded by trace_imports.py (one per line); empty when the trace was not run."""
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def icon_file(root: Path) -> Path | None:
    """The platform's icon format, made by make_icons.py into packaging/build/icons."""
    suffix = {"win32": ".ico", "darwin": ".icns"}.get(sys.platform, ".png")
    path = root / "packaging" / "build" / "icons" / f"{APP_NAME}{suffix}"
    return path if path.is_file() else None
