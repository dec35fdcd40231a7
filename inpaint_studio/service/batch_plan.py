"""A folder batch without Ray: which images pair with which masks, what is already done, and the report.

Pairing is by file name: IMAGES_DIR/photo.jpg goes with the mask in MASKS_DIR whose name without its
extension is "photo" (photo.png, photo.jpg, ...). Outputs are named like their inputs (OUT_DIR/photo.jpg;
with several variants photo-1.jpg, photo-2.jpg, ...); an input whose format cannot be written (GIF, PSD, ...)
gives a PNG (photo.png). An image whose outputs all exist is skipped, so running a batch again resumes it:
outputs are written atomically, so an existing output is always a complete one.

OUT_DIR/report.json (format "inpaint-studio/batch-report", version 1) lists `done` (file, outputs, seed,
seconds, device), `failed` (file, reason: one sentence) and `skipped` (file, reason). It is rewritten as the
batch goes (`"complete": false` until the end), so even an interrupted run leaves an honest report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import READ_FORMATS, SAVE_FORMATS
from inpaint_studio.core.jobspec import InpaintJob

REPORT_NAME = "report.json"
REPORT_FORMAT = "inpaint-studio/batch-report"
REPORT_VERSION = 1


def readable_suffixes() -> set[str]:
    """File extensions of the formats the image loaders open (core/imageio.py READ_FORMATS)."""
    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in READ_FORMATS}


def output_names(image_name: str, variants: int) -> list[str]:
    path = Path(image_name)
    suffix = path.suffix if path.suffix.lower() in SAVE_FORMATS else ".png"
    if variants == 1:
        return [path.stem + suffix]
    return [f"{path.stem}-{i + 1}{suffix}" for i in range(variants)]


@dataclass(frozen=True)
class Pair:
    """One item of the batch: an image, its mask and the outputs it will have."""

    name: str  # the image's file name: the item's identity in the report
    image: Path
    mask: Path
    outputs: tuple[str, ...]  # file names in OUT_DIR


@dataclass
class BatchPlan:
    todo: list[Pair]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.skipped) + len(self.failed)


def _files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise BadInputError(f"The {what} folder {folder} does not exist or is not a folder; check the path.")
    suffixes = readable_suffixes()
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def plan_batch(images_dir: Path, masks_dir: Path, out_dir: Path, variants: int = 1) -> BatchPlan:
    """Pair the folders' files (see the module docstring); nothing is decoded here."""
    images = _files(images_dir, "images")
    if not images:
        raise BadInputError(f"The images folder {images_dir} has no image files; check the path.")
    masks: dict[str, list[Path]] = {}
    for mask in _files(masks_dir, "masks"):
        masks.setdefault(mask.stem, []).append(mask)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = BatchPlan([], [], [])
    for image in images:
        outputs = tuple(output_names(image.name, variants))
        if all((out_dir / name).is_file() for name in outputs):
            plan.skipped.append({"file": image.name, "reason": f"already done: {', '.join(outputs)} exist(s)"})
            continue
        candidates = masks.get(image.stem, [])
        if not candidates:
            plan.failed.append(
                {
                    "file": image.name,
                    "reason": f"No mask named {image.stem}.* in {masks_dir}; add one or remove the image.",
                }
            )
            continue
        pngs = [m for m in candidates if m.suffix.lower() == ".png"]
        if len(candidates) > 1 and len(pngs) != 1:
            names = ", ".join(m.name for m in candidates)
            plan.failed.append(
                {"file": image.name, "reason": f"Several masks could belong to it ({names}); keep one of them."}
            )
            continue
        mask = pngs[0] if len(candidates) > 1 else candidates[0]
        plan.todo.append(Pair(image.name, image, mask, outputs))
    return plan


@dataclass
class BatchReport:
    """What happened to each item; written to OUT_DIR/report.json (see the module docstring)."""

    out_dir: Path
    job: InpaintJob
    images_dir: Path
    masks_dir: Path
    done: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    @property
    def exit_code(self) -> int:
        return BadInputError.exit_code if self.failed else 0

    def to_dict(self, *, complete: bool) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "complete": complete,
            "images_dir": str(self.images_dir),
            "masks_dir": str(self.masks_dir),
            "out_dir": str(self.out_dir),
            "job": self.job.to_dict(),
            "seconds": round(time.time() - self.started, 2),
            "counts": {"done": len(self.done), "failed": len(self.failed), "skipped": len(self.skipped)},
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
        }

    def write(self, *, complete: bool) -> Path:
        path = self.out_dir / REPORT_NAME
        text = json.dumps(self.to_dict(complete=complete), indent=2) + "\n"
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
        return path
