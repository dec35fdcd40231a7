"""`inpaint-studio batch IMAGES_DIR --masks MASKS_DIR -o OUT_DIR`: the same edit on a whole folder, on Ray Data.

Pairs images and masks by file name, runs one engine actor per GPU (per CPU core without GPUs), writes each
output atomically under the input's name, and OUT_DIR/report.json (done / failed / skipped). Running it
again skips what is done. Exit 0 when nothing failed, 2 when some items failed (the report says why).
Needs the optional `cluster` extra (Ray); see docs/remote.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from inpaint_studio.cli.job_options import add_job_options, job_from_args
from inpaint_studio.cli.serve import require_ray
from inpaint_studio.core.errors import BadInputError, CancelledError


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "batch",
        help="inpaint a folder of images with a folder of masks (Ray Data; resumable)",
        description="Inpaint every image of IMAGES_DIR with the mask of the same name in MASKS_DIR; outputs "
        "go to OUT_DIR under the input's name, with OUT_DIR/report.json. Running it again resumes.",
    )
    b.add_argument("images", metavar="IMAGES_DIR", help="folder of images")
    b.add_argument("--masks", required=True, metavar="MASKS_DIR", help="folder of masks named like the images")
    b.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (created if missing)")
    b.add_argument("--job", metavar="JOB.json", help="the job's settings (a job, or a record); options override it")
    b.add_argument("--ray-address", metavar="ADDR", help="run on this Ray cluster (default: a private one here)")
    b.add_argument("--actors", type=int, help="engine actors (default: one per GPU, else one per CPU core, max 8)")
    b.add_argument("--download", action="store_true", help="download the model if it is not installed")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_job_options(b)
    b.set_defaults(func=run)


def read_job_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"The job file {path} cannot be read ({exc.strerror or exc}); check the path.") from exc
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"The job file {path} is not valid JSON; fix the file.") from exc
    if isinstance(data, dict) and isinstance(data.get("job"), dict):  # a GenerationRecord (record.json, history)
        data = data["job"]
    if not isinstance(data, dict):
        raise BadInputError(f"The job file {path} must hold a JSON object of job settings.")
    return data


class BatchProgress:
    """One line on stderr: a bar over every item, the counts and the time left."""

    def __init__(self, total: int, stream: Any = None, width: int = 30) -> None:
        self.total, self.width = max(total, 1), width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.first: int | None = None

    def __call__(self, report: Any) -> None:
        finished = len(report.done) + len(report.failed) + len(report.skipped)
        worked = len(report.done) + len(report.failed)
        if self.first is None:
            self.first = finished - worked
        elapsed = time.perf_counter() - self.start
        left = self.total - finished
        eta = f"  {elapsed / worked * left:.0f}s left" if worked and left else ""
        filled = int(self.width * finished / self.total)
        self.stream.write(
            f"\r[{'#' * filled}{'-' * (self.width - filled)}] {finished}/{self.total}  done {len(report.done)}  "
            f"failed {len(report.failed)}  skipped {len(report.skipped)}{eta}   "
        )
        self.stream.flush()

    def end(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from inpaint_studio.engine.models import resolve_model
    from inpaint_studio.service.batch_plan import BatchReport, plan_batch

    base = read_job_file(Path(args.job)) if args.job else None
    job = job_from_args(args, base)
    images_dir, masks_dir, out_dir = Path(args.images), Path(args.masks), Path(args.output)
    if args.actors is not None and args.actors < 1:
        raise BadInputError(f"--actors is {args.actors}; use at least 1.")
    if not args.ray_address:  # a missing model fails now, not once per image (a cluster's nodes have their own)
        resolve_model(job.model, allow_download=args.download)
    plan = plan_batch(images_dir, masks_dir, out_dir, 1 if job.is_classical else job.variants)  # classic: one
    report = BatchReport(out_dir, job, images_dir, masks_dir)
    require_ray()
    import ray

    from inpaint_studio.service.batch import run_batch
    from inpaint_studio.service.cluster import connect

    progress = None if args.quiet else BatchProgress(plan.total)
    joined = ray.is_initialized()  # called from a program that already uses Ray: leave it connected
    connect(args.ray_address)
    try:
        run_batch(plan, report, actors=args.actors, allow_download=args.download, on_item=progress)
    except KeyboardInterrupt:
        report.write(complete=False)
        raise CancelledError(
            f"Stopped after {len(report.done)} of {len(plan.todo)} image(s); the outputs written are complete, "
            "and running the same command again resumes."
        ) from None
    finally:
        if progress is not None:
            progress(report)
            progress.end()
        if not joined:
            ray.shutdown()
    path = report.write(complete=True)
    print(f"{len(report.done)} done, {len(report.failed)} failed, {len(report.skipped)} skipped: {path}")
    for item in report.failed:
        print(f"  failed: {item['file']}: {item['reason']}", file=sys.stderr)
    return report.exit_code
