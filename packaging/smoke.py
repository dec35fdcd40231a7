"""Smoke test of the application as users get it: `inpaint-studio --smoke-test OUTDIR [--model FOLDER]`.

packaging/entry.py (the frozen app's entry point) hands `--smoke-test` here; from source the same test runs
as `python packaging/entry.py --smoke-test OUTDIR ...`, which is how build_linux.sh compares the two.

A normal run starts the studio through the real start-up path (create_application + run_gui, qasync loop,
QT_QPA_PLATFORM=offscreen unless told otherwise), opens a sample photo (JPEG, written here), loads a mask from
a PNG, runs the classical fill and, with --model, a diffusion model from a folder through the Generate panel,
the worker thread and the real Engine, applies each result as a layer and exports the composite. It checks
the output (same size, changed inside the mask, bit-identical far outside it), writes smoke-report.json with
what it saw (Qt platform and image plugins, Pillow codecs, which samplers can be built, where the code was
loaded from) and exits 0 only when every check passed.

`--first-run` is meant for a fresh HOME with an empty Hugging Face cache: it checks the no-model state a new
user sees (classical fill selected, catalog models offered as downloads, a clear message when one is used
before it is downloaded, the engine not loaded) and that the classical fill works with nothing downloaded.

When frozen it also checks isolation: every module comes from the bundle, and sys.path holds nothing but the
bundle (no source tree, no virtualenv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_SIZE = (640, 480)
MASK_BOX = (250, 180, 370, 280)  # left, top, right, bottom of the painted rectangle
UNCHANGED_MARGIN = 48  # px: beyond this distance from the mask (feather 8 + grow 0) nothing may change
STEP_TIMEOUT_S = 600.0  # a tiny model takes seconds; a loaded shared build machine can take minutes


class SmokeFailure(Exception):
    pass


class Report:
    def __init__(self, mode: str) -> None:
        self.data: dict[str, Any] = {"mode": mode, "checks": [], "ok": False}
        self.start = time.perf_counter()

    def check(self, name: str, ok: bool, detail: Any = "") -> None:
        elapsed = time.perf_counter() - self.start
        self.data["checks"].append({"check": name, "ok": bool(ok), "detail": str(detail), "t_s": round(elapsed, 2)})
        print(f"[{elapsed:6.1f}s] {'PASS' if ok else 'FAIL'}  {name}{f'  ({detail})' if detail != '' else ''}")
        sys.stdout.flush()
        if not ok:
            raise SmokeFailure(f"{name}: {detail}")

    def note(self, key: str, value: Any) -> None:
        self.data[key] = value

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")


# ---- environment ------------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import inpaint_studio

    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "bundle": getattr(sys, "_MEIPASS", None),
        "inpaint_studio": inpaint_studio.__file__,
        "sys_path": list(sys.path),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "virtual_env": os.environ.get("VIRTUAL_ENV"),
    }


def check_isolation(report: Report) -> None:
    """Frozen only: the bundle alone provides the code (the source tree and venvs are invisible)."""
    import importlib.util

    import inpaint_studio

    bundle = Path(sys._MEIPASS).resolve()  # type: ignore[attr-defined]
    module = Path(inpaint_studio.__file__).resolve()
    report.check("app code comes from the bundle", module.is_relative_to(bundle), module)
    outside = [p for p in sys.path if p and not Path(p).resolve().is_relative_to(bundle)]
    report.check("sys.path holds only the bundle", not outside, outside or bundle)
    report.check("the tests package is not importable", importlib.util.find_spec("tests") is None)
    report.check("no virtualenv active", not os.environ.get("VIRTUAL_ENV"), os.environ.get("VIRTUAL_ENV", ""))


# ---- inputs and outputs -------------------------------------------------------------------------------------


def write_inputs(outdir: Path) -> tuple[Path, Path]:
    """A photo-like JPEG (gradient, a bright disc to remove, noise) and a rectangle mask PNG."""
    import numpy as np
    from PIL import Image

    width, height = SAMPLE_SIZE
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([60 + x / width * 140, 90 + y / height * 120, 160 - x / width * 60], axis=-1)
    left, top, right, bottom = MASK_BOX
    cx, cy = (left + right) / 2, (top + bottom) / 2
    rgb[(x - cx) ** 2 + (y - cy) ** 2 < 35**2] = (250, 240, 40)  # the "object" the mask covers
    rgb += rng.normal(0, 5, rgb.shape)
    sample = outdir / "sample.jpg"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(sample, quality=92)
    mask = np.zeros((height, width), np.uint8)
    mask[top:bottom, left:right] = 255
    mask_path = outdir / "sample-mask.png"
    Image.fromarray(mask).save(mask_path)
    return sample, mask_path


def check_output(report: Report, name: str, output: Path, before: Any) -> Any:
    """The exported composite: right size, changed inside the mask, identical far from it. Returns it."""
    import numpy as np
    from PIL import Image

    report.check(f"{name}: output written", output.is_file() and output.stat().st_size > 0, output)
    after = np.asarray(Image.open(output).convert("RGB"))
    report.check(f"{name}: output size", after.shape[:2] == before.shape[:2], f"{after.shape[1]}x{after.shape[0]}")
    left, top, right, bottom = MASK_BOX
    inside = (slice(top, bottom), slice(left, right))
    report.check(f"{name}: masked area repainted", bool((after[inside] != before[inside]).any()))
    far = np.ones(after.shape[:2], bool)
    m = UNCHANGED_MARGIN
    far[max(0, top - m) : bottom + m, max(0, left - m) : right + m] = False
    same = bool((after[far] == before[far]).all())
    report.check(f"{name}: pixels far from the mask unchanged", same)
    return after


# ---- what the build can do (compared between source and frozen runs by build_linux.sh) ---------------------


def capabilities() -> dict[str, Any]:
    from PIL import features
    from PySide6.QtGui import QGuiApplication, QImageReader, QImageWriter

    return {
        "qt_platform": QGuiApplication.platformName(),
        "qt_image_read": sorted(bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()),
        "qt_image_write": sorted(bytes(f.data()).decode() for f in QImageWriter.supportedImageFormats()),
        "pillow_codecs": {name: bool(features.check(name)) for name in ("jpg", "zlib", "webp", "libtiff")},
        "samplers": sampler_availability(),
    }


def sampler_availability() -> dict[str, str]:
    """Build every named sampler from a stock SD scheduler config: 'ok' or the error's first line."""
    import diffusers

    from inpaint_studio.engine.schedulers import SCHEDULERS

    base = diffusers.PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    ).config
    out: dict[str, str] = {}
    for name, (class_name, overrides) in SCHEDULERS.items():
        try:
            getattr(diffusers, class_name).from_config(dict(base), **overrides)
            out[name] = "ok"
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}"
    return out


# ---- the GUI driver ---------------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


class Driver:
    def __init__(self, args: argparse.Namespace, report: Report, sample: Path, mask: Path) -> None:
        self.args = args
        self.report = report
        self.sample = sample
        self.mask = mask
        self.exit_code = 1

    def start(self) -> None:
        # run_gui installed the app's excepthook (log + message bar) before the loop started: chain onto
        # it, so an exception escaping a Qt slot fails the smoke test instead of scrolling past in the log.
        self.uncaught: list[str] = []
        app_hook = sys.excepthook

        def record(kind: type[BaseException], value: BaseException, tb: Any) -> None:
            self.uncaught.append("".join(traceback.format_exception(kind, value, tb)))
            app_hook(kind, value, tb)

        sys.excepthook = record
        asyncio.get_event_loop().create_task(self.run())

    async def run(self) -> None:
        from PySide6.QtWidgets import QApplication

        window = None
        try:
            window = await self.find_window()
            await self.drive(window)
            await asyncio.sleep(0.2)  # let queued slots (panels refreshing after the last result) run
            self.report.check("no uncaught exceptions", not self.uncaught, "\n".join(self.uncaught)[-2000:])
            self.exit_code = 0
        except Exception as exc:
            self.report.note("error", "".join(traceback.format_exception(exc)))
            print(f"SMOKE TEST FAILED: {exc}", file=sys.stderr)
            traceback.print_exc()
        finally:
            if window is not None:
                window.undo_stack.setClean()  # nothing to save: close without asking
            QApplication.closeAllWindows()
            QApplication.quit()

    async def find_window(self) -> Any:
        from PySide6.QtWidgets import QApplication

        from inpaint_studio.ui.window.main_window import MainWindow

        def windows() -> list[Any]:
            return [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]

        await wait_until(lambda: bool(windows()), 60, "the main window")
        window = windows()[0]
        self.report.check("main window shown", window.isVisible(), window.windowTitle())
        return window

    async def drive(self, window: Any) -> None:
        import numpy as np
        from PIL import Image

        report, args = self.report, self.args
        await wait_until(lambda: not window.document.is_empty, 60, "the sample image to open")
        report.check("sample image opened", window.document.width == SAMPLE_SIZE[0], window.windowTitle())
        report.check("window icon set", not window.windowIcon().isNull() or not _app_icon_expected())
        controller = window.generation
        report.check("mask loaded from PNG", bool(window.files.load_mask(self.mask)))
        before = np.asarray(Image.open(self.sample).convert("RGB"))
        if args.first_run:
            await self.first_run_state(window, controller)
        after = await self.generate(window, controller, "classic", before, "gui-classic.png")
        if args.model:
            await self.generate(window, controller, str(args.model), after, "gui-model.png")
        report.note("capabilities", capabilities())
        caps = report.data["capabilities"]
        report.check("Qt platform plugin", caps["qt_platform"] == args.platform, caps["qt_platform"])
        wanted = {"png", "jpeg", "jpg", "webp", "tif", "tiff", "bmp", "svg"}
        missing = wanted - set(caps["qt_image_read"])
        report.check("Qt image format plugins", not missing, f"missing: {sorted(missing)}" if missing else "")

    async def generate(self, window: Any, controller: Any, model: str, before: Any, name: str) -> Any:
        report = self.report
        panel = controller.panel
        label = "classical fill" if model == "classic" else f"model {Path(model).name}"
        report.check(f"{label}: selected in the Generate panel", panel.select_model(model), model)
        if model != "classic":
            panel.prompt_edit.setPlainText("a wooden bench")
            panel.steps_spin.setValue(2)
            panel.seed_edit.setText("7")
            panel.seed_lock.setChecked(True)
            panel.live_preview_check.setChecked(True)
        count = len(controller.candidates.candidates())
        failures: list[str] = []
        controller.worker.job_failed.connect(lambda event: failures.append(event.message))
        controller.generate()
        await wait_until(
            lambda: len(controller.candidates.candidates()) > count or bool(failures),
            STEP_TIMEOUT_S,
            f"the {label} result",
        )
        report.check(f"{label}: job finished", not failures, failures[0] if failures else panel.status_label.text())
        candidate = controller.candidates.candidates()[count]
        report.check(f"{label}: result applied as a layer", controller.apply(candidate) is not None)
        output = self.args.outdir / name
        report.check(f"{label}: exported", bool(window.files.export_image(output)), output.name)
        return check_output(report, label, output, before)

    async def first_run_state(self, window: Any, controller: Any) -> None:
        from inpaint_studio.core.jobspec import CLASSIC_MODEL
        from inpaint_studio.engine.catalog import installed_models
        from inpaint_studio.ui.window.main_window import ENGINE_PLACEHOLDER

        report, panel = self.report, controller.panel
        report.check("no model installed (fresh cache)", installed_models() == [], os.environ.get("HF_HOME", ""))
        report.check("engine not loaded yet", window.engine_label.text() == ENGINE_PLACEHOLDER)
        recent = [Path(p).name for p in window.recent_files()]
        report.check("fresh settings: only the sample in recent files", recent == [self.sample.name], recent)
        report.check("classical fill preselected", panel.model_reference() == CLASSIC_MODEL, panel.model_reference())
        catalog = [c for c in panel.models.choices() if c.source == "catalog"]
        report.check("catalog models offered", len(catalog) >= 1, [c.reference for c in catalog])
        labelled = all(not c.installed and "not installed" in c.label for c in catalog)
        report.check("catalog models marked 'not installed'", labelled, [c.label for c in catalog])
        first = catalog[0]
        panel.select_model(first.reference)
        report.check("Download button offered", panel.models.download_button.isVisibleTo(panel), first.reference)
        report.check(
            "download size shown", panel.models.info.text().startswith("Not installed"), panel.models.info.text()
        )
        errors: list[str] = []
        controller.worker.job_failed.connect(lambda event: errors.append(event.message))
        controller.generate()
        await wait_until(lambda: bool(errors), STEP_TIMEOUT_S, "the 'not installed' message")
        shown = window.message_bar.text()
        report.check("using it first says what to download", "not installed" in shown and "download" in shown, shown)


def _app_icon_expected() -> bool:
    """The icon check applies once the app sets a window icon (resources/icons holds the image)."""
    from inpaint_studio.core.resources import resource_path

    return resource_path("icons", "inpaint-studio-256.png").is_file()


# ---- headless CLI (same process, the real cli.main) -----------------------------------------------------


def run_cli(report: Report, outdir: Path, sample: Path, mask: Path, models: list[str]) -> None:
    import numpy as np
    from PIL import Image

    from inpaint_studio.cli import main as cli_main

    before = np.asarray(Image.open(sample).convert("RGB"))
    for model in ["classic", *models]:
        out = outdir / f"cli-{Path(model).stem}.png"
        args = ["inpaint", str(sample), "--mask", str(mask), "-o", str(out), "--model", model, "-q"]
        if model != "classic":
            # 128 px: SDXL and Kandinsky would otherwise work at 1024/768 px, minutes for a tiny model on a CPU.
            args += ["--steps", "2", "--seed", "3", "--prompt", "a wooden bench", "--resolution", "128"]
        start = time.perf_counter()
        code = cli_main(args)
        report.check(
            f"cli inpaint --model {Path(model).name}: exit 0", code == 0, f"{time.perf_counter() - start:.1f}s"
        )
        check_output(report, f"cli {Path(model).name}", out, before)


# ---- main -----------------------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="inpaint-studio --smoke-test", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the sample, the results and smoke-report.json")
    parser.add_argument("--model", type=Path, help="a diffusers model folder to run through the GUI")
    parser.add_argument("--cli-model", action="append", default=[], help="models to run through the CLI too")
    parser.add_argument("--first-run", action="store_true", help="check the first-run / no-model state")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a smoke test never downloads
    args.platform = os.environ["QT_QPA_PLATFORM"]
    args.outdir.mkdir(parents=True, exist_ok=True)
    report = Report("first-run" if args.first_run else "full")
    report.note("environment", environment())
    report_path = args.outdir / "smoke-report.json"
    try:
        if getattr(sys, "frozen", False):
            check_isolation(report)
        sample, mask = write_inputs(args.outdir)
        code = run_gui_smoke(args, report, sample, mask)
        if code == 0:
            run_cli(report, args.outdir, sample, mask, [str(m) for m in args.cli_model])
    except Exception as exc:
        report.note("error", "".join(traceback.format_exception(exc)))
        print(f"SMOKE TEST FAILED: {exc}", file=sys.stderr)
        code = 1
    report.data["ok"] = code == 0
    report.data["duration_s"] = round(time.perf_counter() - report.start, 1)
    report.write(report_path)
    print(f"smoke test {'passed' if code == 0 else 'FAILED'} in {report.data['duration_s']} s; report: {report_path}")
    return code


def run_gui_smoke(args: argparse.Namespace, report: Report, sample: Path, mask: Path) -> int:
    from PySide6.QtCore import QTimer

    from inpaint_studio.ui.app import create_application, run_gui

    app = create_application()
    driver = Driver(args, report, sample, mask)
    QTimer.singleShot(0, driver.start)

    def give_up() -> None:
        report.note("error", f"the smoke test did not finish within {args.timeout:.0f} s")
        print("SMOKE TEST FAILED: timeout", file=sys.stderr)
        app.closeAllWindows()
        app.quit()

    watchdog = QTimer(app)
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(give_up)
    watchdog.start(int(args.timeout * 1000))
    run_gui([str(sample)])  # the real start-up path; returns when the window closes
    watchdog.stop()
    return driver.exit_code
