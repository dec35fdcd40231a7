"""`inpaint-studio outpaint IMAGE --expand LEFT,TOP,RIGHT,BOTTOM -o OUT [job options]`: outpainting, headless.

The canvas grows by the given pixels on each side; the new area is pre-filled (the classical fill by default,
engine/prefill.py) so the model sees the picture continue, then filled by the chosen model with the same job
options as `inpaint`. The original pixels are copied exactly and stay bit-exact: the generation's mask is the
new area minus a strip as wide as its blend (feather + grow) next to the image, so its soft edge ends at the
image's border (core/canvas.py). An expansion beyond the app's pixel limit is one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inpaint_studio.cli.common import (
    ProgressBar,
    add_model_access,
    cancel_on_sigint,
    check_output,
    make_engine,
    note_unsafe,
    output_paths,
)
from inpaint_studio.cli.job_options import add_job_options, job_from_args
from inpaint_studio.core.canvas import Margins, blend_reach, check_expansion, expand_array, outpaint_mask
from inpaint_studio.core.imageio import load_image, save_image
from inpaint_studio.engine.events import CancelToken
from inpaint_studio.engine.prefill import CLASSIC, check_prefill_method, prefill, prefill_label, prefill_methods


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "outpaint",
        help="add canvas around an image and fill it, headless",
        description=(
            "Add canvas around an image and fill it. --prefill fills the new area first (default: classic; "
            f"{', '.join(prefill_methods())}, or a removal model file), then the model paints it."
        ),
    )
    p.add_argument("image", help="the image to extend")
    p.add_argument(
        "--expand",
        required=True,
        metavar="LEFT,TOP,RIGHT,BOTTOM",
        help="pixels of canvas to add on each side, e.g. 0,0,256,0 (256 px on the right)",
    )
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    add_model_access(p)
    add_job_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # --prefill (a job option) fills the whole new area here, before the model paints it; the job itself then
    # runs without one. Not given: the classical fill, which continues the edge's colours.
    method = check_prefill_method(vars(args).pop("job__prefill", CLASSIC))
    job = job_from_args(args).resolved()
    margins = Margins.parse(args.expand)
    out = Path(args.output)
    check_output(out)
    loaded = load_image(Path(args.image))
    width, height = loaded.image.size
    check_expansion(width, height, margins)  # one sentence, exit 2, before anything is allocated
    rgba = np.asarray(loaded.image.convert("RGBA"))
    canvas = expand_array(rgba, margins)
    hole = outpaint_mask(width, height, margins, 0)
    started = time.perf_counter()
    engine = make_engine(args)
    filled = prefill(canvas, hole, method, engine=engine)  # a removal network loads through the engine
    if not args.quiet and method != "none":
        print(f"pre-filled the new area ({prefill_label(method).lower()}) in {time.perf_counter() - started:.1f}s")
    mask = outpaint_mask(width, height, margins, blend_reach(job.mask.feather_px, job.mask.grow_px))
    opaque = bool((rgba[..., 3] == 255).all()) and method != "none"
    if not mask.any():
        print(
            "inpaint-studio: the new canvas is narrower than the blend (feather + grow), so it keeps its pre-fill; "
            "lower --feather to let the model paint it.",
            file=sys.stderr,
        )
        path = output_paths(out, 1)[0]
        save_image(_final(filled, opaque), path, icc_profile=loaded.icc_profile, exif=loaded.exif)
        print(f"{path}  pre-fill only")
        return 0
    cancel = CancelToken()
    previous = cancel_on_sigint(cancel)
    try:
        progress = None if args.quiet else ProgressBar()
        result = engine.run(job, filled, mask, on_event=progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    note_unsafe(result.model)
    model_name = result.model.get("reference", job.model)
    for variant, (path, image) in enumerate(zip(output_paths(out, len(result.images)), result.images)):
        record = result.record(variant)
        params = record.parameters(image.width, image.height, model_name)
        final = _final(np.asarray(image.convert("RGBA")), opaque)
        save_image(final, path, parameters=params, icc_profile=loaded.icc_profile, exif=loaded.exif)
        seed = "" if record.seed_used is None else f"  seed {record.seed_used}"
        print(f"{path}  {final.width}×{final.height}{seed}  {result.duration_s:.1f}s on {result.device}")
    return 0


def _final(rgba: np.ndarray, opaque: bool) -> Image.Image:
    """RGB when the picture is opaque everywhere (an opaque photo with a filled border), else RGBA."""
    if opaque and (rgba[..., 3] == 255).all():
        return Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
    return Image.fromarray(rgba, "RGBA")
