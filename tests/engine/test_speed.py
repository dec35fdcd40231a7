"""Speed and memory settings: device defaults, each toggle applied and undone, compile once with dynamic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import Area, InpaintJob, MemoryMode, SpeedOptions
from inpaint_studio.engine import speed
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


def test_auto_resolves_per_device_and_size():
    auto = SpeedOptions()
    assert speed.resolve(auto, "cpu", (512, 512), 512) == {
        "attention": "sdpa",
        "vae_tiling": False,
        "channels_last": False,
        "compile_unet": False,
    }
    assert speed.resolve(auto, "cuda:0", (512, 512), 512)["channels_last"] is True
    assert speed.resolve(auto, "mps", (512, 512), 512)["attention"] == "sliced"
    assert speed.resolve(auto, "cpu", (1025, 1024), 512)["vae_tiling"] is True  # above 4x native pixels
    forced = SpeedOptions(attention="sliced", vae_tiling="off", channels_last="on", compile_unet=True)
    assert speed.resolve(forced, "cpu", (4096, 4096), 512) == {
        "attention": "sliced",
        "vae_tiling": False,
        "channels_last": True,
        "compile_unet": True,
    }


def test_unknown_settings_are_refused():
    problems = InpaintJob(speed=SpeedOptions(attention="flash", vae_tiling="maybe")).problems()
    assert problems == [
        "Attention 'flash' is unknown; use one of: auto, sdpa, sliced.",
        "Vae tiling 'maybe' is unknown; use auto, on or off.",
    ]
    data = InpaintJob(speed=SpeedOptions(channels_last="on")).to_dict()
    assert data["speed"]["channels_last"] == "on"
    assert InpaintJob.from_dict(data).speed == SpeedOptions(channels_last="on")
    assert InpaintJob.from_dict({"model": "classic"}).speed == SpeedOptions()  # older records


def test_toggles_apply_and_undo_exactly(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    plain = engine.run(job_for(tiny_sd_inpaint), image, mask)
    pipe = engine.pipelines.pipelines()[0]
    loaded_processors = {k: type(v) for k, v in pipe.unet.attn_processors.items()}
    options = SpeedOptions(attention="sliced", vae_tiling="on", channels_last="on")
    tuned = engine.run(job_for(tiny_sd_inpaint, speed=options), image, mask)
    assert tuned.extra["speed"] == {
        "attention": "sliced",
        "vae_tiling": True,
        "channels_last": True,
        "compile_unet": False,
    }
    assert {type(v).__name__ for v in pipe.unet.attn_processors.values()} == {"SlicedAttnProcessor"}
    assert pipe.vae.use_tiling is True
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=__import__("torch").channels_last)
    # Same picture up to float rounding: these settings change how, not what.
    diff = np.abs(pixels(tuned.images[0]).astype(int) - pixels(plain.images[0]).astype(int))
    assert diff.max() <= 2
    again = engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert {k: type(v) for k, v in pipe.unet.attn_processors.items()} == loaded_processors
    assert pipe.vae.use_tiling is False
    assert np.array_equal(pixels(again.images[0]), pixels(plain.images[0]))


def test_offload_needs_an_accelerator(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    for mode in (MemoryMode.MODEL_OFFLOAD, MemoryMode.SEQUENTIAL_OFFLOAD):
        with pytest.raises(BadInputError, match="needs an NVIDIA GPU"):
            engine.run(job_for(tiny_sd_inpaint, memory_mode=mode, device="cpu"), image, mask)


@pytest.mark.slow
def test_compile_once_reused_and_no_recompile_for_a_new_size(tiny_sd_inpaint, monkeypatch):
    """torch.compile with a counting backend (the CPU inductor needs a C++ toolchain): graphs compiled."""
    import torch

    compiled_graphs = []

    def counting_backend(graph_module, example_inputs):
        compiled_graphs.append(graph_module)
        return graph_module.forward

    monkeypatch.setattr(speed, "COMPILE_BACKEND", counting_backend)
    torch._dynamo.reset()
    eng = Engine()
    image, mask = photo(160, 160), box_mask(160, 160, (40, 40, 120, 120))
    job = job_for(tiny_sd_inpaint, speed=SpeedOptions(compile_unet=True), area=Area.WHOLE)
    first = eng.run(job.replace(resolution=64), image, mask)
    after_first = len(compiled_graphs)
    assert first.extra["speed"]["compile_unet"] is True and after_first >= 1
    pipe = eng.pipelines.pipelines()[0]
    compiled_unet = pipe.unet
    assert compiled_unet is not speed.original_unet(compiled_unet)
    eng.run(job.replace(resolution=64, seed=8), image, mask)
    assert len(compiled_graphs) == after_first  # same size: the compiled graph is reused
    eng.run(job.replace(resolution=96), image, mask)  # a new working size
    # The first graph is specialised to the first size (the UNet's shape checks); at the first new size
    # torch compiles one size-generic graph, which then serves every later size.
    after_new_size = len(compiled_graphs)
    assert after_new_size <= 2 * after_first
    eng.run(job.replace(resolution=128), image, mask)
    eng.run(job.replace(resolution=160), image, mask)
    assert len(compiled_graphs) == after_new_size
    assert pipe.unet is compiled_unet  # compiled once, reused
    eng.run(job.replace(speed=SpeedOptions()), image, mask)
    assert pipe.unet is speed.original_unet(compiled_unet)  # off again: the plain UNet
    eng.release()
    torch._dynamo.reset()


def test_the_fastest_preset_resolves_per_device_and_keeps_the_picture(engine, tiny_sd_inpaint, tiny_ip_adapter):
    fastest = SpeedOptions(preset="fastest")
    assert speed.resolve(fastest, "cpu", (512, 512), 512) == {
        "attention": "sdpa",
        "vae_tiling": False,
        "channels_last": True,
        "compile_unet": False,  # torch.compile only on CUDA: the CPU inductor needs a C++ toolchain
        "fuse_qkv": True,
        "preset": "fastest",
    }
    assert speed.resolve(fastest, "cuda:0", (512, 512), 512)["compile_unet"] is True
    assert speed.resolve(fastest, "mps", (512, 512), 512)["attention"] == "sdpa"
    assert speed.resolve(fastest, "cuda", (512, 512), 512, ip_adapter=True)["fuse_qkv"] is False
    assert speed.resolve(SpeedOptions(attention="sliced", fuse_qkv="on"), "cpu", (64, 64), 64)["fuse_qkv"] is False
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    plain = engine.run(job_for(tiny_sd_inpaint), image, mask)
    fast = engine.run(job_for(tiny_sd_inpaint, speed=fastest), image, mask)
    assert fast.extra["speed"]["fuse_qkv"] is True and fast.extra["speed"]["channels_last"] is True
    pipe = engine.pipelines.pipelines()[0]
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    # Same picture up to float rounding (measured: at most 1 level of 255 on the tiny model).
    assert np.abs(pixels(fast.images[0]).astype(int) - pixels(plain.images[0]).astype(int)).max() <= 2
    again = engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert np.array_equal(pixels(again.images[0]), pixels(plain.images[0]))  # unfused: exactly as before
    assert "FusedAttnProcessor2_0" not in {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    referenced = engine.run(
        job_for(tiny_sd_inpaint, speed=fastest, ip_adapter=str(tiny_ip_adapter)), image, mask, reference_image=image
    )
    assert referenced.extra["speed"]["fuse_qkv"] is False  # it would replace the IP-Adapter's processors
    engine.run(job_for(tiny_sd_inpaint), image, mask)


def test_compiled_artifacts_are_saved_after_the_first_compiled_call(tmp_path, monkeypatch):
    """The warm start: inductor's artifacts go to the app's cache folder, and are read before the next compile."""
    import torch

    monkeypatch.setenv(speed.CACHE_ENV, str(tmp_path))
    saved = tmp_path / "torch-compile" / f"artifacts-torch{torch.__version__}.bin"
    assert speed.compile_cache_file() == saved
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"artifacts", None))
    loaded: list[bytes] = []
    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", loaded.append)
    assert speed.save_compile_cache() == saved and saved.read_bytes() == b"artifacts"
    monkeypatch.setattr(speed, "_cache_loaded", False)
    assert speed.load_compile_cache() is True and loaded == [b"artifacts"]
    assert speed.load_compile_cache() is False  # once per process


def test_the_fastest_preset_follows_a_lora_change(engine, tiny_sd_inpaint, tiny_lora):
    """Fused QKV copies the attention weights: a LoRA put on (or changed) after fusing must be in the copy."""
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    fastest = SpeedOptions(preset="fastest")
    for weight in (0.5, 1.0):
        lora = ((str(tiny_lora), weight),)
        fused = engine.run(job_for(tiny_sd_inpaint, speed=fastest, loras=lora), image, mask)
        plain = engine.run(job_for(tiny_sd_inpaint, loras=lora), image, mask)
        assert np.abs(pixels(fused.images[0]).astype(int) - pixels(plain.images[0]).astype(int)).max() <= 2
    pipe = engine.pipelines.pipelines()[0]
    assert not any(hasattr(m, "to_qkv") for m in pipe.unet.modules())  # unfused: the copies are gone
    engine.run(job_for(tiny_sd_inpaint), image, mask)
