"""Record the modules the app imports by name at run time, for the PyInstaller spec's hidden imports.

Run by build_linux.sh (and the CI workflow) with the build virtualenv's Python from the repository root:

    python packaging/trace_imports.py OUTPUT.txt

It imports every app module, resolves every pipeline, scheduler and CLIP class the engine can name, builds
one tiny random model of each supported family (tests/tiny_models.py, offline) and runs one job with each
through the real Engine. Every module of TRACE_PACKAGES that is then in sys.modules is written to OUTPUT:
whatever a load path touched, lazily or not, gets bundled.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import bundle_config  # noqa: E402  (needs the sys.path line above)

# transformers classes the supported pipelines name in their model_index.json.
TRANSFORMERS_CLASSES = (
    "CLIPTextModel",
    "CLIPTextModelWithProjection",
    "CLIPTokenizer",
    "CLIPTokenizerFast",
    "CLIPVisionModelWithProjection",
    "CLIPImageProcessor",
    "CLIPFeatureExtractor",
)


def import_app_modules() -> None:
    import inpaint_studio

    for module in pkgutil.walk_packages(inpaint_studio.__path__, "inpaint_studio."):
        if module.name != "inpaint_studio.__main__":  # importing it runs the app
            importlib.import_module(module.name)


def resolve_named_classes() -> None:
    import diffusers
    import transformers

    from inpaint_studio.engine.families import PIPELINE_FAMILIES
    from inpaint_studio.engine.schedulers import SCHEDULERS

    importlib.import_module("diffusers.pipelines.auto_pipeline")
    for name in [*PIPELINE_FAMILIES, "AutoPipelineForInpainting"]:
        getattr(diffusers, name)
    for class_name, _overrides in SCHEDULERS.values():
        getattr(diffusers, class_name)
    for name in TRANSFORMERS_CLASSES:
        getattr(transformers, name, None)


def run_tiny_models(folder: Path) -> None:
    import numpy as np
    import torch

    from inpaint_studio.core.jobspec import InpaintJob
    from inpaint_studio.engine.runner import Engine
    from tests import tiny_models

    torch.set_num_threads(1)  # tiny models: one thread is as fast, and kinder to a shared build machine
    image = np.full((64, 64, 3), 128, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    engine = Engine()
    builders = ("sd_inpaint", "sd", "sdxl_inpaint", "kandinsky_inpaint", "sd_inpaint_single_file")
    for name in builders:
        model = tiny_models.BUILDERS[name](folder / name)
        # resolution 64: the tiny models would otherwise run at their native 512-1024 px, which takes minutes.
        job = InpaintJob(model=str(model), prompt="a test", steps=2, seed=1, scheduler="Euler a", resolution=64)
        engine.run(job, image, mask)
        print(f"traced {name}: ok", flush=True)
    engine.release()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: trace_imports.py OUTPUT.txt", file=sys.stderr)
        return 2
    out = Path(argv[0])
    import_app_modules()
    resolve_named_classes()
    with tempfile.TemporaryDirectory(prefix="inpaint-trace-") as tmp:
        run_tiny_models(Path(tmp))
    names = sorted(
        name
        for name, module in list(sys.modules.items())
        if module is not None and name.split(".")[0] in bundle_config.TRACE_PACKAGES
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"{len(names)} modules recorded in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
