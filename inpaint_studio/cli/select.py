"""`inpaint-studio select IMAGE --point X,Y [--exclude X,Y] [--box X0,Y0,X1,Y1] -o MASK.png`: click-to-select, headless.

The same Segment Anything model and code as the studio's Select tool (engine/segmentation.py): points on the
object, points to leave out, a box around it; the object's mask is written as a greyscale image (white = the
object), ready for `inpaint --mask`. A value that is not a point or box, or a point outside the image, is one
sentence and exit code 2; a model that is missing or not a SAM model is exit code 3.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inpaint_studio.cli.common import check_output
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import load_image, save_image
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt, parse_box, parse_point
from inpaint_studio.engine.segmentation import DEFAULT_SEGMENTER, Segmenter, resolve_segmenter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select",
        help="make a mask of the object at a point (Segment Anything), headless",
        description="Write the mask of the object under the given points (and inside the box) with a Segment "
        "Anything model: white = the object. Coordinates are image pixels from the top-left corner.",
    )
    p.add_argument("image", help="the image to select in")
    p.add_argument("--point", action="append", default=[], metavar="X,Y", help="a point on the object (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="X,Y", help="a point to leave out (repeatable)")
    p.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box around the object (two corners)")
    p.add_argument("-o", "--output", required=True, help="the mask image to write (.png recommended)")
    p.add_argument(
        "--model",
        default=DEFAULT_SEGMENTER,
        help=f"a SAM / SlimSAM / SAM 2 hub id or model folder [{DEFAULT_SEGMENTER}]",
    )
    p.add_argument("--download", action="store_true", help="download the model when it is not installed")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def prompt_from_args(args: argparse.Namespace) -> SelectionPrompt:
    """The prompt the options describe (values checked; the image bounds are checked later)."""
    points = [PromptPoint(*parse_point(text, "--point")) for text in args.point]
    points += [PromptPoint(*parse_point(text, "--exclude"), include=False) for text in args.exclude]
    box = parse_box(args.box) if args.box is not None else None
    prompt = SelectionPrompt(tuple(points), box)
    if not prompt.has_object:
        raise BadInputError(
            "Say where the object is with --point X,Y (on it) or --box X0,Y0,X1,Y1 (around it); "
            "--exclude only takes parts away."
        )
    return prompt


def run(args: argparse.Namespace) -> int:
    prompt = prompt_from_args(args)
    out = Path(args.output)
    check_output(out)
    loaded = load_image(Path(args.image))
    width, height = loaded.image.size
    prompt.check(width, height)  # a point outside the image: one sentence, exit 2, before any model loads
    started = time.perf_counter()
    segmenter = Segmenter(resolve_segmenter(args.model, allow_download=args.download))
    embedding = segmenter.embed(np.asarray(loaded.image.convert("RGB")))
    result = segmenter.predict(embedding, prompt)
    save_image(Image.fromarray(result.mask, "L"), out)
    if not args.quiet:
        selected = int((result.mask > 0).sum())
        print(
            f"{out}  {selected} px selected ({selected / (width * height):.1%}), model score {result.score:.2f}  "
            f"{time.perf_counter() - started:.1f}s on {segmenter.device} (image {embedding.duration_s:.2f}s, "
            f"click {result.duration_s * 1000:.0f} ms)"
        )
        if selected == 0:
            print("inpaint-studio: the model found no object there; try another point or a box.")
    return 0
