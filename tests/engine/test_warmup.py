"""engine/warmup.py: torch and diffusers imported without long lock holds, and without transformers' noise.

Each test runs a fresh interpreter: what is checked happens once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FALLBACK_WARNING = "requires torchvision"


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_importing_the_engine_libraries_is_quiet_but_keeps_real_warnings_and_a_working_torch() -> None:
    done = run_python(
        """
        import gc, json, sys
        from inpaint_studio.engine import warmup
        preloaded = warmup.preload_torch_libraries()
        seconds = warmup.import_engine_libraries()
        import torch, transformers
        from transformers.utils import logging as hf_logging
        hf_logging.get_logger("transformers.models.clip").warning("a real transformers warning")
        print(json.dumps({
            "preloaded": preloaded,
            "seconds": seconds,
            "gc_enabled": gc.isenabled(),
            "frozen": gc.get_freeze_count(),
            "matmul": float((torch.ones(8, 8) @ torch.ones(8, 8)).sum()),
            "clip": transformers.CLIPImageProcessor.__name__,
        }))
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert FALLBACK_WARNING not in done.stderr
    assert "a real transformers warning" in done.stderr  # transformers' own logging is untouched
    assert facts["gc_enabled"] and facts["frozen"] > 100_000  # the imported modules are out of later collections
    assert facts["matmul"] == 512.0 and facts["seconds"] > 0
    if sys.platform.startswith("linux"):
        assert facts["preloaded"] == ["libc10.so", "libtorch_cpu.so"]
        assert facts["clip"] == "CLIPImageProcessorPil"  # no torchvision here: the PIL processor, quietly


def test_a_command_line_generation_prints_no_torchvision_fallback_warnings(tmp_path: Path, tiny_sd_inpaint) -> None:
    image, mask, out = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    box = np.zeros((64, 64), np.uint8)
    box[16:48, 16:48] = 255
    Image.fromarray(box).save(mask)
    argv = [sys.executable, "-m", "inpaint_studio", "inpaint", str(image), "--mask", str(mask), "-o", str(out)]
    argv += ["--model", str(tiny_sd_inpaint), "--steps", "2", "--seed", "1", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.is_file()
    assert FALLBACK_WARNING not in done.stderr, done.stderr[-2000:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is for Linux's dynamic loader")
def test_preloading_is_skipped_once_torch_is_imported() -> None:
    done = run_python(
        """
        import torch
        from inpaint_studio.engine import warmup
        print(warmup.preload_torch_libraries())
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
