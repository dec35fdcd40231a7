"""Benchmark of click-to-select: image embedding (once per image) and one click (decoder + mask scaling).

Not a test: it prints a table and never passes or fails on time. Run from the repository root:

    .venv/bin/python benchmarks/bench_select.py                        # SlimSAM-77 and SlimSAM-50
    .venv/bin/python benchmarks/bench_select.py --models slimsam-50 sam-vit-base --clicks 30
    .venv/bin/python benchmarks/bench_select.py --busy                 # clicks while a "generation" runs

The models are the real architectures (the configs of nielsr/slimsam-77-uniform, nielsr/slimsam-50-uniform
and facebook/sam-vit-base) with random weights: speed does not depend on the weights' values, and nothing
needs downloading. Each is saved with save_pretrained and loaded through `Segmenter`, the path a downloaded
model takes. Per model and image size: the encoder once (median of --embeds runs), then --clicks clicks
(one point: SAM's three guesses, the best kept; three points and a box: one answer), each timed from the
prompt to the full-size uint8 mask, as the Select tool gets it. `--busy` runs the clicks while another
thread keeps torch busy with 512x512 matrix products on one intra-op thread (what the engine thread does with
a UNet on a 2-core machine): the reason the Select tool has its own thread is that a click then still answers.
The goal: a click < 150 ms on a CPU with a SlimSAM-size model.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaint_studio.core.selection import PromptPoint, SelectionPrompt  # noqa: E402
from inpaint_studio.engine.segmentation import Segmenter, resolve_segmenter  # noqa: E402

# vision_config overrides of each checkpoint's config.json (the rest is SamConfig's default: ViT-B layout).
MODELS = {
    "slimsam-77": {"hidden_size": 168, "mlp_dim": 696},
    "slimsam-50": {"hidden_size": 384, "mlp_dim": 1536},
    "sam-vit-base": {},
}
SIZES = {"1024x768": (768, 1024), "6000x4000": (4000, 6000)}


def build(name: str, folder: Path) -> Path:
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(0)
    SamModel(SamConfig(vision_config=MODELS[name])).save_pretrained(folder)
    SamProcessor(SamImageProcessor()).save_pretrained(folder)  # SAM's defaults: 1024 px, ImageNet mean/std
    return folder


def photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, 128 + 60 * np.sin(x / 90) * np.cos(y / 70)], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


class Busy:
    """A thread doing torch matrix work, like a generation in the engine thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        torch.set_num_threads(1)
        a = torch.randn(512, 512)
        while not self._stop.is_set():
            (a @ a).sum().item()

    def __enter__(self) -> Busy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def clicks(segmenter: Segmenter, embedding, width: int, height: int, count: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(1)
    out: dict[str, list[float]] = {"1 point": [], "3 points + box": []}
    for _ in range(count):
        x, y = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        one = SelectionPrompt((PromptPoint(x, y),))
        several = SelectionPrompt(
            (PromptPoint(x, y), PromptPoint(x + width * 0.05, y), PromptPoint(x, y + height * 0.1, include=False)),
            box=(x - width * 0.15, y - height * 0.15, x + width * 0.15, y + height * 0.15),
        )
        for label, prompt in (("1 point", one), ("3 points + box", several)):
            started = time.perf_counter()
            segmenter.predict(embedding, prompt)
            out[label].append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["slimsam-77", "slimsam-50"], choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--embeds", type=int, default=2)
    parser.add_argument("--busy", action="store_true", help="click while another thread keeps torch busy")
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="torch intra-op threads [the studio's choice: all cores but one]",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    print(
        f"# {platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"load average before {os.getloadavg()[0]:.1f}"
        f"{', clicks under a concurrent torch load' if args.busy else ''}"
    )
    print(
        "| model | params M | image | load s | embed s (median) | click ms: 1 point median / p95 | "
        "3 points + box median / p95 | peak RSS MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = build(name, Path(tmp) / name)
            started = time.perf_counter()
            segmenter = Segmenter(resolve_segmenter(str(folder)))
            load_s = time.perf_counter() - started
            params = sum(p.numel() for p in segmenter.model.parameters()) / 1e6
            for size in args.sizes:
                height, width = SIZES[size]
                image = photo(height, width)
                embeds = []
                for _ in range(max(1, args.embeds)):
                    started = time.perf_counter()
                    embedding = segmenter.embed(image)
                    embeds.append(time.perf_counter() - started)
                segmenter.predict(embedding, SelectionPrompt((PromptPoint(width / 2, height / 2),)))  # warm-up
                if args.busy:
                    with Busy():
                        times = clicks(segmenter, embedding, width, height, args.clicks)
                else:
                    times = clicks(segmenter, embedding, width, height, args.clicks)

                def stat(values: list[float]) -> str:
                    ordered = sorted(values)
                    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
                    return f"{statistics.median(ordered):.0f} / {p95:.0f}"

                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(
                    f"| {name} | {params:.1f} | {size} | {load_s:.2f} | {statistics.median(embeds):.2f} | "
                    f"{stat(times['1 point'])} | {stat(times['3 points + box'])} | {rss:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
