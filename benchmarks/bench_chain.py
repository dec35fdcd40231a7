"""Chain benchmark: memory and time of a two-step same-checkpoint chain. Prints tables, never passes or fails.

The chain is the seed's "inpaint -> image-to-image" on one checkpoint: step 1 inpaints a masked area, step 2
redraws the whole result at strength 0.6. The engine runs step 2 on a from_pipe view of the loaded
pipeline, so it should add no weights. Compared with:
- "load twice": what an app without from_pipe does: AutoPipelineForInpainting.from_pretrained and then
  AutoPipelineForImage2Image.from_pretrained of the same folder, both kept;
- "steps alone": each step as its own job in a fresh engine (so each pays its own load).

Model: SD 1.5 inpainting's architecture (benchmarks/configs/sd15_inpaint) with random weights, saved with
save_pretrained and loaded through the engine's public path. On a CPU (default there: --scale half) the
UNet's channel widths are halved so two copies fit in memory; on CUDA the full size runs in fp16. The
UNet has 4 input channels (plain SD 1.5): with a 9-channel inpainting UNet the engine would run step 2
on the inpainting pipeline itself (whole frame masked), which needs no from_pipe at all.
Every scenario runs in a fresh subprocess so its memory numbers start clean; the cold-start scenarios run
twice, alternated, and the best of each is reported. Run:

    .venv/bin/python benchmarks/bench_chain.py                 # CPU: half-size model, 256 px, 4 steps
    python benchmarks/bench_chain.py --device cuda             # GPU: full size, 512 px, 20 steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIGS = Path(__file__).with_name("configs") / "sd15_inpaint"  # the same configs, with a 4-channel UNet
GIB = 2**30


# ---- model -----------------------------------------------------------------------------------------------


def build_model(path: Path, scale: str, device: str) -> Path:
    """SD 1.5 (4-channel UNet): the engine inpaints with it by latent blending, and runs image-to-image
    on a from_pipe StableDiffusionImg2ImgPipeline, which is what this benchmark is about."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.tiny_models import BOS_ID, EOS_ID, make_tokenizer

    def config(name: str) -> dict:
        return json.loads((CONFIGS / f"{name}.json").read_text())

    unet_config = dict(config("unet"), in_channels=4)
    if scale == "half":
        unet_config["block_out_channels"] = [c // 2 for c in unet_config["block_out_channels"]]
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):  # on the GPU: seconds instead of minutes for 1 B parameters
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(config("vae"))
        text_config = CLIPTextConfig(**{k: v for k, v in config("text_encoder").items() if k != "architectures"})
        text_config.bos_token_id, text_config.eos_token_id, text_config.pad_token_id = BOS_ID, EOS_ID, EOS_ID
        text_encoder = CLIPTextModel(text_config)
    pipe = StableDiffusionPipeline(
        unet=unet.to(dtype),
        vae=vae.to(dtype),
        text_encoder=text_encoder.to(dtype),
        tokenizer=make_tokenizer(),
        scheduler=PNDMScheduler.from_config(config("scheduler")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# ---- measuring ----------------------------------------------------------------------------------------------


def rss_gib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GIB


def weight_gib(pipelines: list[Any]) -> float:
    """Distinct parameter/buffer storage held by `pipelines` (a tensor shared by two counts once)."""
    import torch

    seen: dict[int, int] = {}
    for pipe in pipelines:
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                for tensor in [*module.parameters(), *module.buffers()]:
                    seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
    return sum(seen.values()) / GIB


def memory(device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated() / GIB
    return rss_gib()


def inputs(size: int) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return image, mask


def jobs(model: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from inpaint_studio.core.jobspec import InpaintJob, Task

    common = {"model": model, "steps": args.steps, "seed": 1, "device": args.device, "resolution": args.work}
    step1 = InpaintJob(prompt="a red apple", **common)
    step2 = InpaintJob(prompt="an oil painting", task=Task.IMG2IMG, strength=0.6, **common)
    return step1, step2


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# ---- scenarios (each runs in its own process) -------------------------------------------------------------------


def scenario_chain(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """The two steps as one chain: one load, step 2 on a from_pipe view. Then once more, warm."""
    import torch

    from inpaint_studio.engine.chain import Chain, ChainStep, run_chain
    from inpaint_studio.engine.events import JobStarted
    from inpaint_studio.engine.runner import Engine

    step1, step2 = jobs(model, args)
    image, mask = inputs(args.size)
    engine = Engine()
    before = memory(args.device)
    marks: dict[str, float] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, JobStarted) and event.job_id == 1:
            marks["after_step1"] = memory(args.device)  # step 1 done, step 2's pipeline built

    chain = Chain((ChainStep(step1, mask="mask"), ChainStep(step2)))
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(args.device)
    t0 = time.perf_counter()
    result = run_chain(engine, chain, {"image": image, "mask": mask}, on_event=on_event)
    sync(args.device)
    cold = time.perf_counter() - t0
    after = memory(args.device)
    peak = torch.cuda.max_memory_allocated() / GIB if args.device == "cuda" else None
    held = engine.pipelines.pipelines()
    t0 = time.perf_counter()
    run_chain(engine, chain, {"image": image, "mask": mask})
    sync(args.device)
    warm = time.perf_counter() - t0
    # The same two steps as separate jobs on the loaded engine (no chain around them).
    t0 = time.perf_counter()
    first = engine.run(step1, image, mask)
    engine.run(step2, first.images[0])
    sync(args.device)
    warm_alone = time.perf_counter() - t0
    return {
        "before": before,
        "after_step1": marks["after_step1"],
        "after_step2": after,
        "peak": peak,
        "weights": weight_gib(held),
        "pipelines": [type(p).__name__ for p in held],
        "time_cold": cold,
        "time_warm": warm,
        "time_warm_alone": warm_alone,
        "step_times": [r.duration_s for r in result.steps],
    }


def scenario_twice(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Without from_pipe: the image-to-image pipeline loaded as a second copy of the same checkpoint.

    Each pipeline runs its step (same sizes and steps as the chain), so memory is measured after real
    work: safetensors weights are memory-mapped and only count in RSS once they are used.
    """
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    dtype = torch.float16 if args.device == "cuda" else torch.float32
    image, mask = inputs(args.work)
    common = {"num_inference_steps": args.steps, "height": args.work, "width": args.work, "output_type": "pil"}
    before = memory(args.device)
    kwargs = {"dtype": dtype, "local_files_only": True, "safety_checker": None, "requires_safety_checker": False}
    first = AutoPipelineForInpainting.from_pretrained(model, **kwargs).to(args.device)
    first.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(1)
    painted = first("a red apple", image=image, mask_image=Image.fromarray(mask), generator=generator, **common)
    after_first = memory(args.device)
    second = AutoPipelineForImage2Image.from_pretrained(model, **kwargs).to(args.device)
    second.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(1)
    second("an oil painting", image=painted.images[0], strength=0.6, generator=generator, **common)
    after_second = memory(args.device)
    return {
        "before": before,
        "after_step1": after_first,
        "after_step2": after_second,
        "weights": weight_gib([first, second]),
    }


def scenario_alone(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Each step as its own job in a fresh engine (each pays its load), timed separately."""
    import torch

    from inpaint_studio.engine.runner import Engine

    step1, step2 = jobs(model, args)
    image, mask = inputs(args.size)
    times = []
    picture: Any = image
    for job, job_mask in ((step1, mask), (step2, None)):
        engine = Engine()
        sync(args.device)
        t0 = time.perf_counter()
        picture = engine.run(job, picture, job_mask).images[0]  # step 2 redraws step 1's result
        sync(args.device)
        times.append(time.perf_counter() - t0)
        engine.release()
        del engine
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return {"time_step1": times[0], "time_step2": times[1]}


SCENARIOS = {"chain": scenario_chain, "twice": scenario_twice, "alone": scenario_alone}


# ---- driver -------------------------------------------------------------------------------------------------------


def run_scenario(name: str, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--scenario", name, "--model", str(model)]
    argv += ["--device", args.device, "--size", str(args.size), "--work", str(args.work), "--steps", str(args.steps)]
    argv += ["--threads", str(args.threads)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"scenario {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scale", choices=["full", "half"], default=None, help="default: full on cuda, half on cpu")
    parser.add_argument("--size", type=int, default=None, help="input image side (default 768 cuda, 384 cpu)")
    parser.add_argument("--work", type=int, default=None, help="working resolution (default 512 cuda, 256 cpu)")
    parser.add_argument("--steps", type=int, default=None, help="default 20 on cuda, 4 on cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--model")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.scale = args.scale or ("full" if cuda else "half")
    args.size = args.size or (768 if cuda else 384)
    args.work = args.work or (512 if cuda else 256)
    args.steps = args.steps or (20 if cuda else 4)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.scenario:
        print(json.dumps(SCENARIOS[args.scenario](args.model, args)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model = build_model(Path(tmp) / "sd15-inpaint-random", args.scale, args.device)
        build_s = time.perf_counter() - t0
        if cuda:
            torch.cuda.empty_cache()
        for file in model.rglob("*.safetensors"):  # same page-cache state for every scenario
            file.read_bytes()
        # Cold times vary with what the process meets first: alternate the two and keep each one's best.
        chains = [run_scenario("chain", model, args), run_scenario("alone", model, args)]
        chains += [run_scenario("chain", model, args), run_scenario("alone", model, args)]
        chain = min(chains[0::2], key=lambda row: row["time_cold"])
        alone = min(chains[1::2], key=lambda row: row["time_step1"] + row["time_step2"])
        twice = run_scenario("twice", model, args)

    where = torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    unit = "GPU memory allocated" if cuda else "process RSS"
    print(f"machine: {where}, torch {torch.__version__}, python {platform.python_version()}")
    print(
        f"model: SD 1.5 architecture, 4-channel UNet ({args.scale} width), random weights, "
        f"{'fp16' if cuda else 'fp32'}; built in {build_s:.0f}s"
    )
    print(f"chain: inpaint {args.size}px image at {args.work}px -> img2img strength 0.6; {args.steps} steps, PNDM")
    print()
    print(f"memory ({unit}, GiB)          weights held  after step 1  after step 2  step 2 adds")
    for label, row in (("chain (from_pipe)", chain), ("load twice", twice)):
        adds = row["after_step2"] - row["after_step1"]
        print(
            f"{label:<30} {row['weights']:>12.2f} {row['after_step1'] - row['before']:>13.2f} "
            f"{row['after_step2'] - row['before']:>13.2f} {adds:>12.2f}"
        )
    if chain.get("peak") is not None:
        print(f"chain peak GPU memory: {chain['peak']:.2f} GiB; pipelines held: {', '.join(chain['pipelines'])}")
    else:
        print(f"pipelines held by the chain: {', '.join(chain['pipelines'])}")
    print()
    summed = alone["time_step1"] + alone["time_step2"]
    print("time (s)                                   chain    steps alone (sum)   ratio")
    print(
        f"{'cold: chain (1 load) vs 2 fresh engines':<40} {chain['time_cold']:>8.2f} {summed:>14.2f} "
        f"{chain['time_cold'] / summed:>12.2f}"
    )
    print(
        f"{'warm: model loaded, chain vs 2 jobs':<40} {chain['time_warm']:>8.2f} {chain['time_warm_alone']:>14.2f} "
        f"{chain['time_warm'] / chain['time_warm_alone']:>12.2f}"
    )
    print(
        f"chain step durations (s): {', '.join(f'{t:.2f}' for t in chain['step_times'])}; "
        f"alone: {alone['time_step1']:.2f}, {alone['time_step2']:.2f}"
    )


if __name__ == "__main__":
    main()
