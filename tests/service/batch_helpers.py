"""Folders for the batch tests: good pairs and broken ones, as a photographer's folder might have them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.engine.helpers import box_mask, photo

BROKEN = {
    "truncated.png": "is damaged or incomplete",
    "wrong-size.png": "use a mask of the same size as the image",
    "no-mask.png": "No mask named no-mask.*",
    "empty-mask.png": "mask",
}


def make_folders(root: Path, good: int) -> tuple[Path, Path, list[str]]:
    """IMAGES_DIR and MASKS_DIR with `good` valid pairs (one a JPEG) and the BROKEN ones; the good names."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    names = []
    for i in range(good):
        name = f"photo-{i:02d}.jpg" if i == 0 else f"photo-{i:02d}.png"
        photo(64, 48, seed=i).save(images / name, quality=95)
        Image.fromarray(box_mask(64, 48, (8 + i % 8, 8, 40 + i % 16, 40))).save(masks / f"{Path(name).stem}.png")
        names.append(name)
    photo(64, 48).save(images / "truncated.png")
    (images / "truncated.png").write_bytes((images / "truncated.png").read_bytes()[:200])
    Image.fromarray(box_mask(64, 48, (8, 8, 40, 40))).save(masks / "truncated.png")
    photo(64, 48).save(images / "wrong-size.png")
    Image.fromarray(box_mask(32, 32, (8, 8, 20, 20))).save(masks / "wrong-size.png")
    photo(64, 48).save(images / "no-mask.png")
    photo(64, 48).save(images / "empty-mask.png")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(masks / "empty-mask.png")
    return images, masks, names


def read_report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def files_of(report: dict[str, Any], key: str) -> list[str]:
    return [item["file"] for item in report[key]]
