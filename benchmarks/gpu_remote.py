"""GPU benchmark of the service (run on a machine with one CUDA GPU and the `cluster` extra): SD 1.5-size
inpainting throughput with one replica on the whole GPU vs two replicas at 0.5 GPU each.

The model is SD 1.5 inpainting's real architecture with random weights (benchmarks/gpu_sd15.py builds it:
speed does not depend on the weights' values; no download). A private Ray with one GPU starts here; each
layout is deployed with `inpaint-studio serve`'s own settings, warmed up, then `--clients` threads submit
`--jobs` jobs in total through engine/remote.py (512x512, masked region, `--steps` steps, fp16). Prints one
table: jobs/s, median latency, and the replica layout. One command:

    PYTHONPATH=. python benchmarks/gpu_remote.py [--jobs 24] [--clients 4] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

LAYOUTS = (("1 replica x 1 GPU", 1, 1.0), ("2 replicas x 0.5 GPU", 2, 0.5))


def image_and_mask() -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((512, 512), Image.Resampling.BICUBIC)
    mask = np.zeros((512, 512), np.uint8)
    mask[128:384, 128:384] = 255
    return image, mask


def measure(url: str, model: Path, jobs: int, clients: int, steps: int) -> tuple[float, float]:
    from inpaint_studio.core.jobspec import Area, InpaintJob
    from inpaint_studio.engine.remote import RemoteEngine

    image, mask = image_and_mask()
    job = InpaintJob(model=str(model), prompt="a red apple", steps=steps, seed=1, area=Area.WHOLE)
    warm = RemoteEngine(url)
    for _ in range(2 * clients):  # every replica loads the model and compiles its kernels
        warm.run(job, image, mask)
    warm.close()
    latencies: list[float] = []
    lock = threading.Lock()
    todo = list(range(jobs))

    def client() -> None:
        engine = RemoteEngine(url)
        while True:
            with lock:
                if not todo:
                    break
                seed = todo.pop()
            start = time.perf_counter()
            engine.run(job.replace(seed=seed), image, mask)
            with lock:
                latencies.append(time.perf_counter() - start)
        engine.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return jobs / wall, statistics.median(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    import ray
    import torch
    from gpu_sd15 import build_random_sd15_inpaint
    from ray import serve

    from inpaint_studio.service.config import ServiceConfig
    from inpaint_studio.service.launch import deploy

    if not torch.cuda.is_available():
        print("No CUDA GPU here: this benchmark needs one.", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = build_random_sd15_inpaint(Path(folder) / "sd15")
        torch.cuda.empty_cache()
        ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
        try:
            for name, replicas, share in LAYOUTS:
                config = ServiceConfig(
                    port=8792, models=(str(model),), user_models=False, replicas=replicas, gpus_per_replica=share
                )
                url = deploy(config)
                rate, latency = measure(url, model, args.jobs, args.clients, args.steps)
                rows.append((name, rate, latency))
                serve.delete("inpaint-studio")
        finally:
            serve.shutdown()
            ray.shutdown()
    gpu = torch.cuda.get_device_name(0)
    print(f"Machine: {gpu}, torch {torch.__version__}, Python {platform.python_version()}; {args.jobs} jobs, ", end="")
    print(f"{args.clients} clients, 512x512, {args.steps} steps, fp16")
    print("| layout | jobs/s | median latency s |")
    print("| --- | --- | --- |")
    for name, rate, latency in rows:
        print(f"| {name} | {rate:.2f} | {latency:.2f} |")
    print(f"two half-GPU replicas / one whole-GPU replica: {rows[1][1] / rows[0][1]:.2f}x the throughput")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
