"""How responsive the GUI event loop stays while the worker thread generates on the CPU.

Run: ``.venv/bin/python benchmarks/bench_ui_responsiveness.py [--jobs 3] [--threads 0 1]``. Prints a table;
never fails on time. Goals: longest stall <= 50 ms and p99 <= 20 ms after warm-up.

What runs: the real main window (offscreen Qt, qasync event loop as in the app) with the generation
controller, a 512x512 image, and the real EngineWorker thread running a tiny SD inpainting model built by
tests/tiny_models.py at a 128x128 working size (64x64 latents), 20 steps (tiny weights, but real diffusers
pipeline code and real tensor work: about 0.1 s per step here). At a 256x256 working size this model's
attention over 128x128 latents is memory-bound (~3 s per step on 2 cores), which makes a run ten minutes
long; the steady-state stalls measured that way were the same (max 17-28 ms, p99 4-6 ms).

A 5 ms precise QTimer records when it fires; its lateness (interval - 5 ms) is how long the UI thread
could not handle events. Phases, in order, each in a fresh process per torch-thread setting
(the one-time costs exist once per process):

* idle: nothing running (the floor);
* warm-up: `worker.warm_up()` - ``import torch`` + diffusers in the worker thread, and the first torch op;
* first job: the pipeline load and the first run;
* steady: further jobs (the state the goals are about);
* steady + pan: the same while a 60 Hz timer pans the canvas and repaints it synchronously; its own
  per-frame time is reported as "pan frame";
* painting + preview: a 60 Hz "stroke" writes brush dabs into the mask for a few seconds with the preview
  while painting on (ui/controllers/paint_preview.py): previews are submitted, cancelled and restarted on
  the worker as the mask changes; how many finished / were cancelled is reported beside the lateness.

On a shared machine much of a stall can be the machine's, not this process's: the UI thread waiting for a
free core, or waiting for the GIL held by a worker thread that is itself waiting for a core. No code here
can prevent those. On Linux each tick also reads the scheduler's counters of every thread of the process
(/proc/self/task/*/schedstat: nanoseconds run, nanoseconds runnable but waiting for a CPU), and the "own"
columns count, of each late tick, only what this process did: the lateness minus the UI thread's wait for
a core, at most the CPU time all of the process's threads ran meanwhile. On an idle machine "own" equals
the lateness; under load it is what an idle machine would have shown.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
TICK_MS = 5
SIZE = 512
WORK = 128
STEPS = 20


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class _SchedulerClock:
    """The UI thread's wait for a CPU (Linux scheduler counter, ns) and the process's CPU time (ns).

    Cheap on purpose, as it runs on every tick of the UI thread: one read of the UI thread's schedstat and the
    process CPU clock. An earlier version read every thread's schedstat; each read releases and re-takes the
    GIL, and while another thread imports (CPU-bound Python) each re-take can wait a switch interval (5 ms),
    so the probe itself made the warm-up ticks 30-40 ms late (measured with a profiler on the UI thread).
    `available` is False where the counter does not exist.
    """

    def __init__(self) -> None:
        main = threading.get_native_id()
        path = f"/proc/self/task/{main}/schedstat"
        self.available = os.path.exists(path)
        self._fd = os.open(path, os.O_RDONLY) if self.available else -1

    def sample(self) -> tuple[int, int]:
        """(the UI thread's wait for a CPU, the CPU time of all of the process's threads), both in ns."""
        if not self.available:
            return 0, 0
        wait = int(os.pread(self._fd, 128, 0).split()[1])
        return wait, time.process_time_ns()


def child(threads: int, jobs: int, model_dir: Path) -> dict:
    """Runs in its own process: the measurements for one torch-thread setting."""
    import numpy as np
    import qasync
    from PIL import Image
    from PySide6.QtCore import QPointF, QSettings, Qt, QTimer

    from inpaint_studio.core.document import MASK
    from inpaint_studio.core.jobspec import Area, InpaintJob
    from inpaint_studio.ui.app import create_application
    from inpaint_studio.ui.document.commands import mask_change
    from inpaint_studio.ui.engine_thread.awaitable import run_job
    from inpaint_studio.ui.engine_thread.worker import EngineWorker
    from inpaint_studio.ui.window.composition import EngineOptions
    from inpaint_studio.ui.window.main_window import MainWindow

    app = create_application([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    settings = QSettings(str(model_dir.parent / f"bench-{threads}.ini"), QSettings.Format.IniFormat)
    worker = EngineWorker(torch_threads=threads)
    engine = EngineOptions(worker=worker, owns_worker=True, warm_up_delay_ms=None)
    window = MainWindow(settings=settings, engine=engine)
    controller = window.generation
    window.resize(1200, 800)
    window.show()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    window.open_image(Image.fromarray(pixels), "bench")
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[180:330, 150:360] = 255
    window.undo_stack.push(mask_change(window.document, mask, "mask"))
    job = InpaintJob(model=str(model_dir), prompt="a bench", steps=STEPS, seed=1, area=Area.WHOLE, resolution=WORK)

    ticks: list[float] = []
    counters: list[tuple[int, int]] = []
    clock = _SchedulerClock()

    def tick() -> None:
        ticks.append(time.perf_counter())
        counters.append(clock.sample())

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    pan_frames: list[float] = []
    panner = QTimer()
    panner.setInterval(16)
    direction = [1.0]

    def pan_frame() -> None:
        start = time.perf_counter()
        window.canvas.pan_by(3 * direction[0], 0)
        direction[0] = -direction[0]
        window.canvas.repaint()
        pan_frames.append((time.perf_counter() - start) * 1000)

    panner.timeout.connect(pan_frame)
    phases: dict[str, dict] = {}

    def measure(name: str, started: int, extra: dict | None = None) -> None:
        stamps = ticks[started:]
        late = [(b - a) * 1000 - TICK_MS for a, b in itertools.pairwise(stamps)]
        own = [
            min(max(0.0, lag - (b[0] - a[0]) / 1e6), (b[1] - a[1]) / 1e6)
            for lag, (a, b) in zip(late, itertools.pairwise(counters[started:]))
        ]
        phases[name] = {
            "ticks": len(late),
            "max": max(late, default=float("nan")),
            "p99": percentile(late, 99),
            "p50": percentile(late, 50),
            "own_max": max(own, default=float("nan")) if clock.available else float("nan"),
            "own_p99": percentile(own, 99) if clock.available else float("nan"),
            "load": os.getloadavg()[0],
            **(extra or {}),
        }

    async def scenario() -> None:
        window.canvas.set_view(1.0, QPointF(0, 0))
        timer.start()
        await asyncio.sleep(0.3)
        start = len(ticks)
        await asyncio.sleep(2.0)
        measure("idle", start)

        start = len(ticks)
        ready = asyncio.get_running_loop().create_future()
        worker.engine_ready.connect(lambda info: ready.done() or ready.set_result(info))
        began = time.perf_counter()
        worker.warm_up()
        info = await ready
        measure("warm-up (import torch, first op)", start, {"seconds": time.perf_counter() - began})
        phases["_info"] = {"import_s": info.import_s, "first_op_s": info.first_op_s, "device": info.device_name}

        start = len(ticks)
        began = time.perf_counter()
        await run_job(worker, job, window.document.composite(), window.document.mask)
        measure("first job (load + run)", start, {"seconds": time.perf_counter() - began})

        start = len(ticks)
        began = time.perf_counter()
        for _ in range(jobs):
            await run_job(worker, job, window.document.composite(), window.document.mask)
        measure("steady generation", start, {"seconds": (time.perf_counter() - began) / jobs})

        start = len(ticks)
        panner.start()
        began = time.perf_counter()
        for _ in range(jobs):
            await run_job(worker, job, window.document.composite(), window.document.mask)
        panner.stop()
        measure(
            "steady + pan/repaint 60 Hz",
            start,
            {
                "seconds": (time.perf_counter() - began) / jobs,
                "pan_p50": percentile(pan_frames, 50),
                "pan_max": max(pan_frames, default=float("nan")),
            },
        )
        pan_frames.clear()
        start = len(ticks)
        panner.start()
        await asyncio.sleep(2.0)
        panner.stop()
        measure(
            "idle + pan/repaint 60 Hz",
            start,
            {"pan_p50": percentile(pan_frames, 50), "pan_max": max(pan_frames, default=float("nan"))},
        )

        # Painting with the preview while painting on: dabs along a line, 60 per second.
        settings_model = controller.settings_model
        settings_model.load_job(job.replace(area=Area.MASKED, resolution=WORK, steps=4))
        settings_model.set("paint_preview", True)
        counts = {"finished": 0, "cancelled": 0}
        worker.task_finished.connect(lambda _e: counts.__setitem__("finished", counts["finished"] + 1))
        worker.job_cancelled.connect(lambda _e: counts.__setitem__("cancelled", counts["cancelled"] + 1))
        position = [60]
        dab = np.full((24, 24), 255, np.uint8)

        def paint_dab() -> None:
            x = 60 + (position[0] * 3) % (SIZE - 140)
            position[0] += 1
            window.document.write_region(MASK, (x, 240, x + 24, 264), dab)

        painter = QTimer()
        painter.setInterval(16)
        painter.timeout.connect(paint_dab)
        start = len(ticks)
        painter.start()
        await asyncio.sleep(6.0)
        painter.stop()
        await asyncio.sleep(3.0)  # the last preview finishes after the stroke
        measure("painting 60 Hz + preview while painting", start, {"previews": dict(counts)})
        settings_model.set("paint_preview", False)
        timer.stop()

    with loop:
        loop.run_until_complete(scenario())
    window.undo_stack.setClean()
    window.close()
    controller.shutdown()
    return phases


def build_model(root: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.tiny_models import build_sd_inpaint

    return build_sd_inpaint(root / "tiny_sd_inpaint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=3, help="jobs per steady phase")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0, 1],
        help="torch intra-op threads (0 = torch's own default: one per core)",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.jobs, args.model)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp))
        results = {}
        for threads in args.threads:
            command = [
                sys.executable,
                __file__,
                "--child",
                str(threads),
                "--jobs",
                str(args.jobs),
                "--model",
                str(model),
            ]
            out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"the run with {threads} torch threads failed")
            results[threads] = json.loads(line[len("RESULT ") :])

    print(f"GUI event-loop lateness of a {TICK_MS} ms timer while the worker generates")
    print(f"(tiny SD inpainting model, {WORK}x{WORK} working size, {STEPS} steps; {os.cpu_count()} CPU cores)")
    print()
    header = (
        f"{'torch threads':>13} | {'phase':<40} | {'s/job':>6} | {'max ms':>7} | {'p99 ms':>7} | {'p50 ms':>6} | "
        f"{'own max':>7} | {'own p99':>7} | {'load':>4} | pan frame p50/max ms"
    )
    print(header)
    print("-" * len(header))
    for threads, phases in results.items():
        info = phases.pop("_info")
        label = f"all ({os.cpu_count()})" if threads == 0 else str(threads)
        for name, row in phases.items():
            seconds = f"{row['seconds']:.2f}" if "seconds" in row else ""
            pan = f"{row['pan_p50']:.1f} / {row['pan_max']:.1f}" if "pan_p50" in row else ""
            if "previews" in row:
                pan = f"previews: {row['previews']['finished']} shown, {row['previews']['cancelled']} cancelled"
            print(
                f"{label:>13} | {name:<40} | {seconds:>6} | {row['max']:7.1f} | {row['p99']:7.1f} | "
                f"{row['p50']:6.2f} | {row['own_max']:7.1f} | {row['own_p99']:7.1f} | {row['load']:4.1f} | {pan}"
            )
        print(
            f"{'':>13} | one-time in the worker: import torch+diffusers {info['import_s']:.2f} s, "
            f"first op {info['first_op_s'] * 1000:.0f} ms; device {info['device']}"
        )
    print()
    print("Goals for every phase after the window is shown: max <= 50 ms, p99 <= 20 ms.")
    print("own: the part of each stall this process caused (see the module docstring; Linux only);")
    print("load: the machine's 1-minute load average at the end of the phase.")


if __name__ == "__main__":
    main()
