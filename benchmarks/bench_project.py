"""Project save/open benchmark: a 6000x4000 document, 5 layers, 20 history entries. Prints a table.

.venv/bin/python benchmarks/bench_project.py
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.history import History, capture
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import Project, load_project, save_project

WIDTH, HEIGHT = 6000, 4000


def photo_like(rng: np.random.Generator) -> np.ndarray:
    """Smooth gradients plus sensor-like noise: compresses like a photo, not like random bytes."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([(x * 255) // WIDTH, (y * 255) // HEIGHT, ((x + y) * 255) // (WIDTH + HEIGHT)], -1)
    noisy = base + rng.integers(-6, 7, base.shape)
    rgba = np.empty((HEIGHT, WIDTH, 4), np.uint8)
    rgba[..., :3] = np.clip(noisy, 0, 255)
    rgba[..., 3] = 255
    return rgba


def build() -> Project:
    rng = np.random.default_rng(0)
    doc = Document(WIDTH, HEIGHT, [Layer("Background", photo_like(rng), kind="base")])
    history = History()
    history.add("open", "Opened", snapshot=capture(doc))
    for i in range(19):
        if i % 5 == 0 and len(doc.layers) < 5:  # 4 result layers with a 600x600 edit each
            layer = Layer(f"result {i}", np.zeros((HEIGHT, WIDTH, 4), np.uint8), kind="result")
            doc.add_layer(layer)
        x, y = 300 * i, 150 * i
        doc.layers[-1].pixels[y : y + 600, x : x + 600] = rng.integers(0, 256, (600, 600, 4), dtype=np.uint8)
        doc.mask[y : y + 600, x : x + 600] = 255
        job = InpaintJob(model="classic", prompt=f"edit {i}", seed=i).to_dict()
        history.add("generate", f"edit {i}", params={"job": job}, snapshot=capture(doc, history.head.snapshot))
    return Project(document=doc, history=history, generate=InpaintJob().to_dict())


def cpu_seconds() -> float:
    """User + system time of every thread of this process (wall time is noisy on a shared machine)."""
    return time.process_time()


def main() -> None:
    project = build()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.inpaint"
        saves, opens, save_cpu, open_cpu = [], [], [], []
        for _ in range(3):
            start, cpu = time.perf_counter(), cpu_seconds()
            save_project(project, path)
            saves.append(time.perf_counter() - start)
            save_cpu.append(cpu_seconds() - cpu)
            start, cpu = time.perf_counter(), cpu_seconds()
            loaded = load_project(path)
            opens.append(time.perf_counter() - start)
            open_cpu.append(cpu_seconds() - cpu)
        size_mb = path.stat().st_size / 2**20
        assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(project.document.layers, loaded.document.layers))
    raw_mb = sum(layer.pixels.nbytes for layer in project.document.layers) / 2**20
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"project: {WIDTH}x{HEIGHT}, {len(project.document.layers)} layers, {len(project.history)} history entries")
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows the wall time)")
    print()
    print(
        f"{'':<6} {'wall s (median of 3)':<22} {'CPU s, all threads (median)':<28} {'file MB':>8} {'raw layers MB':>14}"
    )
    for label, wall, cpu in (("save", saves, save_cpu), ("open", opens, open_cpu)):
        row = f"{label:<6} {statistics.median(wall):<22.2f} {statistics.median(cpu):<28.2f}"
        print(f"{row} {size_mb:>8.1f} {raw_mb:>14.1f}")


if __name__ == "__main__":
    main()
