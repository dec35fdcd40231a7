"""Benchmark of object removal on the CPU: LaMa and MI-GAN next to the classical fill; seconds and peak memory.

Not a test: it prints tables and never passes or fails on time. Random weights (speed does not depend on
their values): LaMa is spandrel's big-lama architecture at its real size (51 M parameters), MI-GAN is its
512 px generator written out layer for layer (benchmarks/migan_arch.py, 6.7 M parameters) inside the same
ONNX pipeline shape as the authors' file, exported here and run by onnxruntime exactly as the engine runs it.

    .venv/bin/python benchmarks/bench_removal.py                 # MI-GAN and the classical fill; LaMa in
                                                                 # .venv-vision (--vision-python to choose)
    .venv/bin/python benchmarks/bench_removal.py --repeat 5 --threads 2 --variants

Scenarios, each through Engine.run (masked region, composite and colour match included):
- "512 px": a 512x512 photo with a 200x160 px hole, worked at 512 px (the goal: LaMa <= 2 s, MI-GAN <= 0.5 s
  on 2 CPU cores);
- "1024 px": a 1024x1024 photo with a 400x320 px hole, worked at 1024 px (`resolution=1024`);
- "6000x4000": a 6000x4000 photo with a 1000x800 px hole, default settings (the model's native 512 px).

Each (network, scenario) runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its own;
"peak MB" is that peak, "+MB" its growth during the timed runs (after loading the network and the first run).
"CPU s" is the process's CPU time per run (all its threads). With `--threads 1` it barely changes when other
work shares the cores, so it is the figure to compare on a busy machine; with more threads, torch's OpenMP
workers spin while they wait for each other, which adds CPU time when the cores are contended.
LaMa needs spandrel, so it runs under the vision venv's Python (--vision-python). `--variants` also times
what the engine does not do by default (LaMa in the plain memory layout, the engine's is channels_last;
onnxruntime with spin-waiting threads, a memory pattern, basic graph optimisation, parallel execution), so
the defaults in engine/removal.py stay measured choices.
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SCENARIOS = {
    "512 px": ((512, 512), (156, 176, 356, 336), 512),
    "1024 px": ((1024, 1024), (312, 352, 712, 672), 1024),
    "6000x4000": ((6000, 4000), (2500, 1600, 3500, 2400), None),
}


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: may include the parent's


def _photo(width: int, height: int) -> np.ndarray:
    """Smooth gradients with noise: photo-like texture, cheap to make at 24 MP."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.empty((height, width, 3), np.uint8)
    base[..., 0] = (x * 0.8 + y * 0.1).astype(np.uint8)
    base[..., 1] = (y * 0.8).astype(np.uint8)
    base[..., 2] = ((x + y) * 0.4).astype(np.uint8)
    noise = rng.integers(0, 12, (height, width, 1), dtype=np.uint8)
    return base + noise


def build_files(folder: Path, networks: list[str]) -> dict[str, str]:
    """Random-weight files in the formats the engine loads: big-lama.safetensors, migan_pipeline.onnx."""
    files: dict[str, str] = {}
    if "migan" in networks:
        import torch
        from migan_arch import MiGanPipeline

        from tests.removal_models import export_onnx

        torch.manual_seed(0)
        image = torch.full((1, 3, 512, 512), 128, dtype=torch.uint8)
        mask = torch.full((1, 1, 512, 512), 255, dtype=torch.uint8)
        path = folder / "migan_pipeline.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on constant folding
            export_onnx(MiGanPipeline().eval(), (image, mask), path, ["image", "mask"], ["result"])
        files["migan"] = str(path)
    files["classic"] = "classic"
    return files


def build_lama(folder: Path) -> str:
    """Run under the vision venv: big-lama's architecture with random weights, as .safetensors."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    path = folder / "big-lama.safetensors"
    save_file({k: v.contiguous() for k, v in LaMa(in_nc=4, out_nc=3).state_dict().items()}, path)
    return str(path)


# ---- one measurement (in its own process) --------------------------------------------------------------
def measure(model: str, scenario: str, repeat: int, threads: int, variant: str) -> dict:
    import torch

    torch.set_num_threads(threads)
    from inpaint_studio.core.jobspec import InpaintJob
    from inpaint_studio.engine import removal
    from inpaint_studio.engine.runner import Engine
    from tests.engine.helpers import box_mask

    (width, height), hole, resolution = SCENARIOS[scenario]
    image = _photo(width, height)
    mask = box_mask(width, height, hole)
    engine = Engine()
    if variant != "default":
        engine.removal = removal.RemovalModels(_variant_loader(variant, threads))
    job = InpaintJob(model=model, resolution=resolution if model != "classic" else None, seed=1)
    started = time.perf_counter()
    first = engine.run(job, image, mask)  # loads the network
    first_s = time.perf_counter() - started
    before = _peak_mb()
    times, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        engine.run(job, image, mask)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {
        "first_s": first_s,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "cpu_s": statistics.median(cpu),
        "peak_mb": _peak_mb(),
        "growth_mb": _peak_mb() - before,
        "working": first.extra.get("working_size"),
    }


def _variant_loader(variant: str, threads: int):
    """Loaders for the --variants table: other onnxruntime session options, LaMa in the plain layout."""
    from inpaint_studio.engine import removal

    def load(info, device):
        if info.path.suffix == ".onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if variant == "ort-spinning" else "0"
            )
            options.enable_mem_pattern = variant == "ort-mem-pattern"
            options.graph_optimization_level = {
                "ort-basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            }.get(variant, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            if variant == "ort-parallel":
                options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
            session = ort.InferenceSession(str(info.path), sess_options=options, providers=["CPUExecutionProvider"])
            return removal.OnnxMiGan(session, "cpu")
        network = removal.load_network(info, device)
        if variant == "contiguous":  # the engine runs LaMa in channels_last: time the plain layout too
            import dataclasses

            import torch

            network.descriptor.model.to(memory_format=torch.contiguous_format)
            network.contract = dataclasses.replace(network.contract, channels_last=False)
        return network

    return load


# ---- the driver -----------------------------------------------------------------------------------------
def run_one(python: str, model: str, scenario: str, repeat: int, threads: int, variant: str) -> dict:
    code = (
        "import json, sys; sys.path[:0] = [{root!r}, {bench!r}]; import bench_removal as b; "
        "print(json.dumps(b.measure({model!r}, {scenario!r}, {repeat}, {threads}, {variant!r})))"
    ).format(
        root=str(ROOT),
        bench=str(ROOT / "benchmarks"),
        model=model,
        scenario=scenario,
        repeat=repeat,
        threads=threads,
        variant=variant,
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--networks", default="lama,migan,classic")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--vision-python",
        default=str(ROOT / ".venv-vision" / "bin" / "python"),
        help="a Python with spandrel, for LaMa (default: the .venv-vision that .ci/run makes)",
    )
    parser.add_argument("--variants", action="store_true", help="also time channels_last / other ORT options")
    args = parser.parse_args()
    networks = args.networks.split(",")
    scenarios = args.scenarios.split(",")
    vision = args.vision_python if Path(args.vision_python).exists() else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = build_files(folder, networks)
        if "lama" in networks:
            made = subprocess.run(
                [
                    vision,
                    "-c",
                    f"import sys; sys.path[:0]=[{str(ROOT)!r}, {str(ROOT / 'benchmarks')!r}]; "
                    f"import bench_removal as b; print(b.build_lama(__import__('pathlib').Path({tmp!r})))",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if made.returncode == 0:
                files["lama"] = made.stdout.strip().splitlines()[-1]
            else:
                print(f"LaMa skipped: {made.stderr.strip().splitlines()[-1]}")
        load = os.getloadavg()
        print(
            f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
            f"Python {platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        print("| network | scenario | working size | first run s | median s | min s | CPU s | peak MB | +MB |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in networks:
            if name not in files:
                continue
            python = vision if name == "lama" else sys.executable
            for scenario in scenarios:
                row = run_one(python, files[name], scenario, args.repeat, args.threads, "default")
                if "error" in row:
                    print(f"| {name} | {scenario} | error: {row['error'][:80]} |")
                    continue
                working = "x".join(map(str, row["working"])) if row["working"] else "full"
                print(
                    f"| {name} | {scenario} | {working} | {row['first_s']:.2f} | {row['median_s']:.2f} | "
                    f"{row['min_s']:.2f} | {row['cpu_s']:.2f} | {row['peak_mb']:.0f} | {row['growth_mb']:.0f} |",
                    flush=True,
                )
        if args.variants:
            print("\n| network | variant | scenario | median s | min s | CPU s | peak MB |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            trials = [
                ("lama", "default"),
                ("lama", "contiguous"),
                ("migan", "default"),
                ("migan", "ort-spinning"),
                ("migan", "ort-mem-pattern"),
                ("migan", "ort-basic"),
                ("migan", "ort-parallel"),
            ]
            for name, variant in trials:
                if name not in files:
                    continue
                python = vision if name == "lama" else sys.executable
                row = run_one(python, files[name], "512 px", args.repeat, args.threads, variant)
                if "error" in row:
                    print(f"| {name} | {variant} | 512 px | error: {row['error'][:80]} |")
                    continue
                print(
                    f"| {name} | {variant} | 512 px | {row['median_s']:.2f} | {row['min_s']:.2f} | "
                    f"{row['cpu_s']:.2f} | {row['peak_mb']:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
