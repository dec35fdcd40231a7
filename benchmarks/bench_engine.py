"""Engine benchmarks on this machine (CPU): prints tables, never passes or fails.

(a) the engine vs calling the same diffusers pipeline directly with identical arguments: time ratio
    (goal <= 1.05) and identical pixels with compositing off;
(b) masked-region mode on a 6000x4000 photo vs the same job on a 512x512 image (goal <= 1.5);
(d) peak memory (RSS) of each scenario, each measured in a fresh subprocess.

The model is the test suite's tiny SD inpainting pipeline, worked at 256x256 so the UNet does real work;
it is loaded from a folder through the same path as a user's model. Run:
    .venv/bin/python benchmarks/bench_engine.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORK = 256  # working resolution (long side) for every diffusion scenario
STEPS = 10


def photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def blob_mask(width: int, height: int, size: int = 200) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cx, cy = width // 2, height // 2
    mask[cy - size // 2 : cy + size // 2, cx - size // 2 : cx + size // 2] = 255
    return mask


def scenario(name: str, model: str, repeats: int) -> dict:
    """Run one scenario in this process; returns timings (s) and, for (a), whether pixels matched."""
    import torch

    from inpaint_studio.core.jobspec import Area, InpaintJob, OutputSize
    from inpaint_studio.engine.runner import Engine

    torch.manual_seed(0)
    engine = Engine()
    job = InpaintJob(model=model, prompt="a red apple", steps=STEPS, seed=1, resolution=WORK)
    times: list[float] = []
    extra: dict = {}
    if name == "engine_vs_direct":
        # Alternate the two calls on the same loaded pipeline so machine noise hits both alike.
        image, mask = photo(WORK, WORK), blob_mask(WORK, WORK, 100)
        job = job.replace(area=Area.WHOLE, preserve_unmasked=False, output_size=OutputSize.PROCESSED)
        engine.run(job, image, mask)  # load + warm up
        pipe = engine.pipelines._pipe
        direct_times: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            via_engine = np.asarray(engine.run(job, image, mask).images[0])
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            raw = pipe(
                prompt=job.prompt,
                image=image,
                mask_image=Image.fromarray(mask),
                height=WORK,
                width=WORK,
                strength=job.strength,
                guidance_scale=job.guidance_scale,
                num_inference_steps=job.steps,
                generator=torch.Generator("cpu").manual_seed(1),
                output_type="np",
            ).images[0]
            direct = np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)
            direct_times.append(time.perf_counter() - start)
        extra["direct_times"] = direct_times
        extra["identical"] = bool(np.array_equal(via_engine, direct))
    else:
        size = {"masked_6000x4000": (6000, 4000), "masked_512": (512, 512)}[name]
        image, mask = photo(*size), blob_mask(*size)
        engine.run(job, image, mask)
        for _ in range(repeats):
            start = time.perf_counter()
            engine.run(job, image, mask)
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"times": times, "peak_rss_mb": peak_mb, **extra}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:  # child process
        print(json.dumps(scenario(args.scenario, args.model, args.repeats)))
        return

    from tests.tiny_models import build_sd_inpaint

    with tempfile.TemporaryDirectory() as tmp:
        model = build_sd_inpaint(Path(tmp) / "sd_inpaint")
        results = {}
        for name in ("engine_vs_direct", "masked_512", "masked_6000x4000"):
            proc = subprocess.run(
                [sys.executable, __file__, "--scenario", name, "--model", str(model), "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, HF_HUB_OFFLINE="1"),
            )
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])

    pair = results.pop("engine_vs_direct")
    results = {"engine": pair, "direct diffusers": {**pair, "times": pair["direct_times"]}, **results}
    med = {k: statistics.median(v["times"]) for k, v in results.items()}
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"model: tiny SD inpainting (test fixture), {WORK}x{WORK} working size, {STEPS} steps, CPU fp32")
    print()
    print(f"{'scenario':<22} {'median s':>9} {'min s':>7} {'peak RSS MB':>12}")
    for name, data in results.items():
        print(f"{name:<22} {med[name]:>9.3f} {min(data['times']):>7.3f} {data['peak_rss_mb']:>12.0f}")
    print()
    ratio = med["engine"] / med["direct diffusers"]
    print(f"(a) engine / direct diffusers time ratio: {ratio:.3f} (goal <= 1.05)")
    print(f"    identical pixels with compositing off: {pair['identical']}")
    big = med["masked_6000x4000"] / med["masked_512"]
    print(f"(b) masked region 6000x4000 / 512x512:    {big:.3f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
