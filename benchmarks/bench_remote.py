"""The engine as a service on this machine (CPU): prints tables, never passes or fails.

(a) per-job overhead of `inpaint-studio serve` (Ray Serve on 127.0.0.1, engine/remote.py client) over the
    in-process engine, for the same job on the same loaded model; calls alternate after a warm-up. Two
    figures: the difference of the wall times (noisy on a shared machine: the engine itself runs in another
    process), and the service's own time, i.e. the call's wall time minus the engine's duration on the
    server (upload, decoding, routing, streaming, result encoding). Goal: <= 150 ms or <= 10 % per job.
(b) folder batch throughput on Ray Data with 1 and 2 engine actors (`service/batch.py`), wall time from
    submitting the batch (actor start-up included) and the steady rate between the first and the last item.

The model is the test suite's tiny SD inpainting pipeline (tests/tiny_models.py); one torch thread per
process (OMP_NUM_THREADS=1) on both sides, so the comparison is like for like. Needs the `cluster` extra:
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_remote.py [--repeats 7] [--items 24]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SCENARIOS = (
    # name, image size, mask box, working resolution, steps
    ("64x64, 4 steps", (64, 64), (16, 16, 48, 48), None, 4),
    ("512x384, masked at 128, 8 steps", (512, 384), (160, 120, 352, 264), 128, 8),
    ("3000x2000 photo, masked at 128, 8 steps", (3000, 2000), (1200, 800, 1500, 1100), 128, 8),
)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 32), max(2, width // 32), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)).astype(np.int16)
    return Image.fromarray(np.clip(big + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8))


def mask_for(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return mask


def overhead(model: Path, repeats: int) -> list[tuple[str, float, float]]:
    from inpaint_studio.core.jobspec import InpaintJob
    from inpaint_studio.engine.runner import Engine
    from inpaint_studio.service.config import ServiceConfig
    from inpaint_studio.service.launch import deploy

    url = deploy(ServiceConfig(port=8791, models=(str(model),), user_models=False, max_megapixels=100))
    from inpaint_studio.engine.remote import RemoteEngine

    remote, local = RemoteEngine(url), Engine()
    rows = []
    for name, size, box, resolution, steps in SCENARIOS:
        image, mask = photo(*size), mask_for(size, box)
        job = InpaintJob(model=str(model), prompt="a red apple", steps=steps, seed=1, resolution=resolution)
        for engine in (local, remote, local, remote):  # warm-up: models loaded, caches hot
            engine.run(job, image, mask)
        times: dict[str, list[float]] = {"local": [], "remote": [], "protocol": []}
        for _ in range(repeats):
            for key, engine in (("local", local), ("remote", remote)):
                start = time.perf_counter()
                result = engine.run(job, image, mask)
                times[key].append(time.perf_counter() - start)
            assert result.images[0].size == size
            # What the service adds to the job: the whole call minus the engine's own time on the server.
            times["protocol"].append(times["remote"][-1] - result.duration_s)
        rows.append((name, *(statistics.median(times[key]) for key in ("local", "remote", "protocol"))))
    remote.close()
    return rows


def batch_throughput(model: Path, items: int, actors: int) -> tuple[float, float]:
    from inpaint_studio.core.jobspec import InpaintJob
    from inpaint_studio.service.batch import run_batch
    from inpaint_studio.service.batch_plan import BatchReport, plan_batch

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        images, masks, out = root / "images", root / "masks", root / "out"
        images.mkdir()
        masks.mkdir()
        for i in range(items):
            photo(512, 384, seed=i).save(images / f"p{i:03d}.png")
            Image.fromarray(mask_for((512, 384), (150, 100, 350, 280))).save(masks / f"p{i:03d}.png")
        job = InpaintJob(model=str(model), prompt="a red apple", steps=8, seed=1, resolution=128)
        plan = plan_batch(images, masks, out)
        report = BatchReport(out, job, images, masks)
        stamps: list[float] = []
        start = time.perf_counter()
        run_batch(plan, report, actors=actors, on_item=lambda _r: stamps.append(time.perf_counter()))
        wall = time.perf_counter() - start
        assert len(report.done) == items, report.failed[:3]
        steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        return wall, steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--items", type=int, default=24)
    args = parser.parse_args()
    import ray
    from ray import serve

    from tests.tiny_models import build_sd_inpaint

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, ", end="")
    print(f"load average {os.getloadavg()[0]:.1f}; torch threads per process: {os.environ['OMP_NUM_THREADS']}")
    with tempfile.TemporaryDirectory() as folder:
        model = build_sd_inpaint(Path(folder) / "tiny")
        ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
        try:
            rows = overhead(model, args.repeats)
            print("\n(a) per-job overhead, median of", args.repeats)
            print("| scenario | in-process s | service s | service - in-process ms | service's own time ms | % |")
            print("| --- | --- | --- | --- | --- | --- |")
            for name, local, remote, protocol in rows:
                extra_ms, own_ms, pct = (remote - local) * 1000, protocol * 1000, protocol / local * 100
                print(
                    f"| {name} | {local:.3f} | {remote:.3f} | {extra_ms:.0f} | {own_ms:.0f} | {pct:.1f} |", flush=True
                )
            serve.shutdown()  # its replica's CPU goes back to the batch actors
            print(f"\n(b) batch of {args.items} pairs (512x384, masked at 128, 8 steps)")
            print("| actors | wall s (with start-up) | items/s overall | steady items/s |")
            print("| --- | --- | --- | --- |")
            for actors in (1, 2):
                wall, steady = batch_throughput(model, args.items, actors)
                print(f"| {actors} | {wall:.1f} | {args.items / wall:.2f} | {steady:.2f} |", flush=True)
        finally:
            serve.shutdown()
            ray.shutdown()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
