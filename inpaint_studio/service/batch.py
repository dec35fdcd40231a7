"""A folder batch on Ray Data: one engine actor per GPU (per CPU core without GPUs), streaming, resumable.

The pipeline (service/batch_plan.py decides what to do first):

1. the pairs to do, as rows of file names (small: the whole list fits in memory);
2. `read`: each pair's two files as bytes, read on this (the driver's) node, so the folders need not be
   shared with the other nodes of a cluster;
3. `EngineActor`: decodes them with the local loaders (core/imageio.py: the same rules as `inpaint`), runs
   the job and encodes the outputs in their final format; any failure becomes the item's one-sentence
   reason, so a broken pair never stops the batch;
4. here: each output is written atomically (a complete file or none), the report is updated.

Ray Data streams the rows with bounded memory (its backpressure limits the rows in flight), retries the
work of an actor that died (a lost node) on another one, and this side writes each item once, whatever
the retries. If the cluster itself fails, the items not done are reported as failed with its reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray

from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.errors import BadInputError, InpaintStudioError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.service.batch_plan import BatchPlan, BatchReport, Pair

log = logging.getLogger(__name__)

REPORT_EVERY_S = 2.0
MAX_CPU_ACTORS = 8  # without GPUs: one per core, at most this many (each holds its own copy of the model)


def default_actors() -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) for the connected cluster: one per GPU, else one per core."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return gpus, 1.0, 1.0
    return max(1, min(MAX_CPU_ACTORS, int(resources.get("CPU", 1)))), 0.0, 1.0


def _read(row: dict[str, Any]) -> dict[str, Any]:
    """The pair's files as bytes (runs on the driver's node: the folders are there)."""
    out = {"name": row["name"], "image_path": row["image_path"], "mask_path": row["mask_path"], "error": ""}
    try:
        out["image_bytes"] = Path(row["image_path"]).read_bytes()
        out["mask_bytes"] = Path(row["mask_path"]).read_bytes()
    except OSError as exc:
        out.update(image_bytes=b"", mask_bytes=b"", error=f"Cannot read {exc.filename} ({exc.strerror}).")
    return out


class EngineActor:
    """Holds one engine (and its loaded model) for the whole batch; one item at a time."""

    def __init__(self, job: dict[str, Any], outputs: dict[str, list[str]], allow_download: bool) -> None:
        from inpaint_studio.engine.runner import Engine

        self.job = InpaintJob.from_dict(job)
        self.outputs = outputs
        self.engine = Engine(allow_download=allow_download)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        keys = ("name", "reason", "outputs", "seed", "duration_s", "device", "node")
        rows: dict[str, list[Any]] = {k: [] for k in keys}
        for index in range(len(batch["name"])):
            name = str(batch["name"][index])
            item = {key: batch[key][index] for key in batch}
            started = time.perf_counter()
            try:
                if item["error"]:
                    raise BadInputError(str(item["error"]))
                files, seed, device = self._one(name, item)
                reason = ""
            except InpaintStudioError as exc:
                files, seed, device, reason = [], -1, "", str(exc)
            except Exception as exc:  # a surprise in one item must not stop the others
                log.exception("batch item %s failed", name)
                files, seed, device = [], -1, ""
                reason = f"It failed unexpectedly ({type(exc).__name__}: {str(exc)[:160]})."
            rows["name"].append(name)
            rows["reason"].append(reason)
            rows["outputs"].append(files)
            rows["seed"].append(seed)
            rows["duration_s"].append(round(time.perf_counter() - started, 3))
            rows["device"].append(device)
            rows["node"].append(self.node)
        return rows

    def _one(self, name: str, item: dict[str, Any]) -> tuple[list[bytes], int, str]:
        from inpaint_studio.core.imageio import load_image, load_mask, save_image

        with tempfile.TemporaryDirectory(prefix="inpaint-batch-") as folder:
            tmp = Path(folder)
            image_file = tmp / Path(str(item["image_path"])).name
            mask_file = tmp / ("mask-" + Path(str(item["mask_path"])).name)
            image_file.write_bytes(bytes(item["image_bytes"]))
            mask_file.write_bytes(bytes(item["mask_bytes"]))
            try:
                loaded = load_image(image_file)
                mask = load_mask(mask_file, size=loaded.image.size)
            except BadInputError as exc:  # name the user's files, not the copies
                text = str(exc).replace(str(image_file), str(item["image_path"]))
                raise BadInputError(text.replace(str(mask_file), str(item["mask_path"]))) from exc
            result = self.engine.run(self.job.resolved(), loaded.image, mask)
            files = []
            for variant, (out_name, image) in enumerate(zip(self.outputs[name], result.images)):
                record = result.record(variant)
                params = record.parameters(
                    image.width, image.height, str(result.model.get("reference", self.job.model))
                )
                out = save_image(
                    image, tmp / out_name, parameters=params, icc_profile=loaded.icc_profile, exif=loaded.exif
                )
                files.append(out.read_bytes())
            device = str(result.extra.get("device_name") or result.device)
            return files, result.seeds[0], device


def run_batch(
    plan: BatchPlan,
    report: BatchReport,
    *,
    actors: int | None = None,
    allow_download: bool = False,
    on_item: Callable[[BatchReport], None] | None = None,
) -> BatchReport:
    """Run the plan's pairs on the connected Ray cluster, filling `report` as items finish."""
    from ray.data import DataContext

    report.skipped.extend(plan.skipped)
    report.failed.extend(plan.failed)
    report.write(complete=False)
    if not plan.todo:
        return report
    count, gpus, cpus = default_actors()
    count = min(actors or count, len(plan.todo))
    context = DataContext.get_current()
    context.enable_progress_bars = False  # the command draws its own
    context.enable_operator_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.verbose_progress = False
    context.execution_options.preserve_order = False
    here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}  # the driver's node (its folders)
    items = [{"name": p.name, "image_path": str(p.image), "mask_path": str(p.mask)} for p in plan.todo]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    # Reading costs no CPU worth reserving (the actors hold the cores), but each concurrent task is a worker
    # process: a small pool keeps the read-ahead bounded without starting a process per file.
    dataset = dataset.map(_read, num_cpus=0, label_selector=here, compute=ray.data.TaskPoolStrategy(size=2))
    outputs = {p.name: list(p.outputs) for p in plan.todo}
    dataset = dataset.map_batches(
        EngineActor,
        batch_size=1,
        batch_format="numpy",
        fn_constructor_kwargs={"job": report.job.to_dict(), "outputs": outputs, "allow_download": allow_download},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=count),
        num_cpus=cpus,
        num_gpus=gpus,  # Ray Data restarts a lost actor and retries its work (max_restarts=-1 by default)
    )
    by_name = {p.name: p for p in plan.todo}
    seen: set[str] = set()
    last_write = time.monotonic()
    try:
        for row in dataset.iter_rows():
            name = str(row["name"])
            if name in seen or name not in by_name:  # a retried task's second answer: written once already
                continue
            seen.add(name)
            _record(report, by_name[name], row)
            if on_item is not None:
                on_item(report)
            if time.monotonic() - last_write >= REPORT_EVERY_S:
                report.write(complete=False)
                last_write = time.monotonic()
    except Exception as exc:  # the cluster failed (not one item): say why for every item left
        log.exception("the batch stopped")
        reason = f"The batch stopped before this item ({type(exc).__name__}: {str(exc)[:200]}); run it again to resume."
        for pair in plan.todo:
            if pair.name not in seen:
                report.failed.append({"file": pair.name, "reason": reason})
    return report


def _record(report: BatchReport, pair: Pair, row: dict[str, Any]) -> None:
    reason = str(row["reason"])
    if reason:
        report.failed.append({"file": pair.name, "reason": reason})
        return
    made = list(row["outputs"])
    if len(made) != len(pair.outputs):
        reason = f"It made {len(made)} image(s) where {len(pair.outputs)} were expected; run it again."
        report.failed.append({"file": pair.name, "reason": reason})
        return
    written = []
    try:
        for name, data in zip(pair.outputs, made):
            target = report.out_dir / name
            blob = bytes(data)
            atomic_write(target, lambda fh, blob=blob: fh.write(blob))
            written.append(name)
    except InpaintStudioError as exc:
        with contextlib.suppress(OSError):
            for name in written:  # all of an item's outputs or none: a resumed run redoes it whole
                os.remove(report.out_dir / name)
        report.failed.append({"file": pair.name, "reason": str(exc)})
        return
    report.done.append(
        {
            "file": pair.name,
            "outputs": written,
            "seed": int(row["seed"]),
            "seconds": float(row["duration_s"]),
            "device": str(row["device"]),
            "node": str(row["node"]),  # the Ray node that made it
        }
    )
