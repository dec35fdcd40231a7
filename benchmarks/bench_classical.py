"""Benchmark of the classical (OpenCV) fill: time, memory and quality per method and image size.

Not a test: it prints a table and never passes or fails on time. Run from the repository root:

    .venv/bin/python benchmarks/bench_classical.py            # 6000x4000 and 1024x1024, 2 % masks
    .venv/bin/python benchmarks/bench_classical.py --repeat 3 --fsr-large   # also FSR on 6000x4000 (slow)

The photo is a seeded mosaic of scikit-image photos at their native scale (no download needed), so the
texture is that of real photos, not of an upscaled one. The mask is seeded too: a few long scratches
(2-6 px wide) and round spots (radius log-uniform in 8-120 px on 6000x4000, scaled with the frame) until
2 % of the pixels are covered.

Each (size, method) runs in a fresh subprocess so that ru_maxrss (the process's peak resident memory,
which only grows) belongs to that method alone; the table shows its growth during the fill. tracemalloc
counts numpy's allocations only (OpenCV allocates in C++, outside its view). Time is the median of
--repeat runs after one warm-up run (the tracemalloc one).
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
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaint_studio.core.jobspec import ClassicalMethod  # noqa: E402
from inpaint_studio.engine import classical  # noqa: E402

SIZES = {"6000x4000": (4000, 6000), "1024x1024": (1024, 1024)}
COVERAGE = 0.02
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")


# ---- inputs -------------------------------------------------------------------------------------------------
def make_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A seeded mosaic of 512x512 crops of scikit-image photos (flipped at random), h x w x 3 uint8."""
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = []
    for name in PHOTOS:
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle is a (left, right, disp)
        if min(image.shape[:2]) < 512:  # chelsea and coffee are smaller than a tile: enlarge a little
            scale = 512 / min(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        sources.append(image)
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, 512):
        for x in range(0, w, 512):
            src = sources[rng.integers(len(sources))]
            sy = rng.integers(0, src.shape[0] - 512 + 1)
            sx = rng.integers(0, src.shape[1] - 512 + 1)
            tile = src[sy : sy + 512, sx : sx + 512]
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            th, tw = min(512, h - y), min(512, w - x)
            out[y : y + th, x : x + tw] = tile[:th, :tw]
    return out


def make_mask(h: int, w: int, seed: int = 1) -> tuple[np.ndarray, int, int]:
    """Seeded scratches and spots covering COVERAGE of the frame; returns (mask, scratches, spots)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    scale = np.sqrt(h * w / (6000 * 4000))  # spot sizes follow the frame size
    n_scratches = 3
    for _ in range(n_scratches):  # long, gently bent scratches
        points = [(int(rng.integers(0, w)), int(rng.integers(0, h // 6)))]
        for _ in range(4):
            x, y = points[-1]
            points.append((int(np.clip(x + rng.normal(0, w / 6), 0, w - 1)), min(h - 1, y + h // 5)))
        cv2.polylines(mask, [np.array(points, np.int32)], False, 1, thickness=int(rng.integers(2, 7)))
    spots = 0
    target = COVERAGE * h * w
    while np.count_nonzero(mask) < target:
        radius = max(2, int(np.exp(rng.uniform(np.log(8), np.log(120))) * scale))
        cv2.circle(mask, (int(rng.integers(0, w)), int(rng.integers(0, h))), radius, 1, -1)
        spots += 1
    return mask.astype(bool), n_scratches, spots


def psnr_in(result: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    err = np.mean((result[mask].astype(np.float64) - reference[mask].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(err, 1e-10)))


# ---- one measurement (child process) --------------------------------------------------------------------------
def measure(size: str, method: str, repeat: int) -> dict:
    h, w = SIZES[size]
    image = make_photo(h, w)
    mask, _, _ = make_mask(h, w)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    tracemalloc.start()
    out = classical.classical_fill(image, mask, ClassicalMethod(method))  # also the warm-up run
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = classical.classical_fill(image, mask, ClassicalMethod(method))
        times.append(time.perf_counter() - start)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "time_s": statistics.median(times),
        "times": times,
        "tracemalloc_peak_mb": peak / 2**20,
        "rss_growth_mb": (rss_after - rss_before) / 1024,
        "rss_peak_mb": rss_after / 1024,
        "psnr": psnr_in(out, image, mask),
    }


def describe_plan(h: int, w: int) -> tuple[str, int]:
    """Regions and what AUTO picks for them, and the FSR block count (uses the module's private planner:
    informational only)."""
    mask, scratches, spots = make_mask(h, w)
    _, _, items = classical._plan(mask, max(classical.DEFAULT_RADIUS.values()), need_depth=True)
    chosen = classical._choose_auto(items)
    fsr = sum(m is ClassicalMethod.FSR for m in chosen)
    blocks = sum(i.blocks for i in items)
    fsr_blocks = sum(i.blocks for i, m in zip(items, chosen) if m is ClassicalMethod.FSR)
    text = (
        f"mask {100 * mask.mean():.2f} % ({scratches} scratches, {spots} spots, {int(mask.sum())} px), "
        f"{len(items)} regions, {blocks} FSR blocks in all; AUTO: FSR for {fsr} regions ({fsr_blocks} "
        f"blocks), NS for {len(items) - fsr}"
    )
    return text, blocks


# ---- driver -------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--fsr-large", action="store_true", help="also run FSR on 6000x4000 (minutes)")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.repeat)))
        return

    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}")
    print(f"cv2 threads {cv2.getNumThreads()}, fill thread pool up to {classical._workers(10**6)} workers")
    print()
    header = (
        f"{'size':<10} {'method':<7} {'time s':>8} {'min s':>7} {'max s':>7} "
        f"{'numpy peak MB':>14} {'RSS +MB':>8} {'PSNR dB':>8}"
    )
    notes = []
    blocks = {}
    for size, (h, w) in SIZES.items():
        text, blocks[size] = describe_plan(h, w)
        print(f"{size}: {text}")
    print()
    print(header)
    print("-" * len(header))
    fsr_ms_per_block = None
    rows = []
    # The small size first: its FSR time per block gives the estimate for the skipped large FSR run.
    for size in sorted(SIZES, key=lambda s: SIZES[s][0] * SIZES[s][1]):
        for method in ClassicalMethod:
            if method is ClassicalMethod.FSR and size == "6000x4000" and not args.fsr_large:
                estimate = f"~{fsr_ms_per_block * blocks[size] / 1000:.0f} s" if fsr_ms_per_block else "minutes"
                rows.append(f"{size:<10} {method.value:<7} {'skipped':>8}")
                notes.append(
                    f"FSR on 6000x4000 is skipped: {blocks[size]} blocks at the 1024x1024 rate of "
                    f"{fsr_ms_per_block:.1f} ms/block is {estimate} on this machine (--fsr-large runs it); "
                    "AUTO spends a fixed FSR budget instead."
                )
                continue
            repeat = 1 if method is ClassicalMethod.FSR else args.repeat
            cmd = [sys.executable, __file__, "--repeat", str(repeat), "--child", size, method.value]
            run = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            if method is ClassicalMethod.FSR:
                fsr_ms_per_block = 1000 * r["time_s"] / blocks[size]
                notes.append(f"FSR ran once per size (plus the warm-up run): it is {repeat} sample(s), not a median.")
            rows.append(
                f"{size:<10} {method.value:<7} {r['time_s']:>8.3f} {min(r['times']):>7.3f} "
                f"{max(r['times']):>7.3f} {r['tracemalloc_peak_mb']:>14.1f} {r['rss_growth_mb']:>8.1f} "
                f"{r['psnr']:>8.2f}"
            )
            print(rows[-1], file=sys.stderr, flush=True)  # live progress; the table follows on stdout
    rows.sort(key=lambda row: list(SIZES).index(row.split()[0]))  # back to the order of SIZES
    print("\n".join(rows))
    for note in dict.fromkeys(notes):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
