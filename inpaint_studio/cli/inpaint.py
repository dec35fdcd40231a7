"""`inpaint-studio inpaint IMAGE --mask MASK -o OUT [job options]`: one job, headless."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from inpaint_studio.cli.common import (
    ProgressBar,
    add_model_access,
    cancel_on_sigint,
    check_fill_options,
    check_output,
    make_engine,
    note_large_hole,
    note_unsafe,
    output_paths,
)
from inpaint_studio.cli.job_options import add_job_options, job_from_args
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import load_image, load_mask, save_image
from inpaint_studio.engine.events import CancelToken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inpaint", help="inpaint one image headless")
    p.add_argument("image", help="the image to edit")
    p.add_argument("--mask", required=True, help="mask image of the same size: white = repaint, black = keep")
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    p.add_argument("--control-image", default=None, help="condition image for non-inpainting ControlNets")
    p.add_argument("--reference", default=None, metavar="IMAGE", help="reference image for --ip-adapter")
    add_model_access(p)
    add_job_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    job = job_from_args(args).resolved()
    out = Path(args.output)
    check_output(out)
    loaded = load_image(Path(args.image))
    mask = load_mask(Path(args.mask), size=loaded.image.size)
    control = load_image(Path(args.control_image)).image if args.control_image else None
    extra = {}
    if args.reference:
        if not job.ip_adapter:
            raise BadInputError("--reference needs an IP-Adapter to use it; add --ip-adapter ID (e.g. h94/IP-Adapter).")
        extra["reference_image"] = load_image(Path(args.reference)).image
    engine = make_engine(args)
    resolve = getattr(engine, "resolve", None)  # a server (--server) resolves the model and applies the same rules
    if resolve is not None:
        check_fill_options(args, job, resolve(job.model))
    cancel = CancelToken()
    previous = cancel_on_sigint(cancel)
    try:
        progress = None if args.quiet else ProgressBar()
        result = engine.run(job, loaded.image, mask, control_image=control, on_event=progress, cancel=cancel, **extra)
    finally:
        signal.signal(signal.SIGINT, previous)
    note_unsafe(result.model)
    model_name = result.model.get("reference", job.model)
    for variant, (path, image) in enumerate(zip(output_paths(out, len(result.images)), result.images)):
        record = result.record(variant)
        params = record.parameters(image.width, image.height, model_name)
        save_image(image, path, parameters=params, icc_profile=loaded.icc_profile, exif=loaded.exif)
        seed = "" if record.seed_used is None else f"  seed {record.seed_used}"
        print(f"{path}{seed}  {result.duration_s:.1f}s on {result.device}")
    note_large_hole(result.extra)
    return 0
