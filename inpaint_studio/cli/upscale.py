"""`inpaint-studio upscale IMAGE -o OUT --model ID-or-PATH [--scale 2|4]`: enlarge an image, headless.

The model is an upscaling network spandrel reads (a Real-ESRGAN, ESRGAN, SwinIR ... weights file, or its hub
reference such as ai-forever/Real-ESRGAN/RealESRGAN_x4.pth) or diffusers' Stable Diffusion x4 upscaler
(stabilityai/stable-diffusion-x4-upscaler). Tiled, so large photos fit in memory; Ctrl+C cancels.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from inpaint_studio.cli.common import ProgressBar, cancel_on_sigint, check_output, make_engine
from inpaint_studio.core.imageio import load_image, save_image
from inpaint_studio.engine.events import CancelToken
from inpaint_studio.engine.upscale import SCALES, UpscaleJob


def register(sub: argparse._SubParsersAction) -> None:
    defaults = UpscaleJob(model="")
    u = sub.add_parser("upscale", help="enlarge an image x2 or x4 with an upscaling model")
    u.add_argument("image", help="the image to enlarge")
    u.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    u.add_argument("--model", required=True, help="upscaler: a weights file, a hub file reference, or a hub id")
    u.add_argument("--scale", type=int, choices=SCALES, default=defaults.scale, help="factor [%(default)s]")
    u.add_argument("--tile", type=int, default=defaults.tile, help="tile side in pixels, 0 = none [%(default)s]")
    u.add_argument("--overlap", type=int, default=defaults.overlap, help="tile overlap in pixels [%(default)s]")
    u.add_argument("--device", default=defaults.device, help="auto, cuda, cuda:N, mps or cpu [%(default)s]")
    u.add_argument("--prompt", default="", help="what the image shows (the SD x4 upscaler only)")
    u.add_argument("--steps", type=int, default=defaults.steps, help="the SD x4 upscaler's steps [%(default)s]")
    u.add_argument("--seed", type=int, default=defaults.seed, help="the SD x4 upscaler's seed [%(default)s]")
    u.add_argument("--download", action="store_true", help="download the upscaler if it is not installed")
    u.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    u.set_defaults(func=run, allow_unsafe_checkpoint=False)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    check_output(out)
    job = UpscaleJob(
        model=args.model,
        scale=args.scale,
        tile=args.tile,
        overlap=args.overlap,
        device=args.device,
        prompt=args.prompt,
        steps=args.steps,
        seed=args.seed,
    )
    loaded = load_image(Path(args.image))
    engine = make_engine(args)
    cancel = CancelToken()
    bar = None if args.quiet else ProgressBar()
    previous = cancel_on_sigint(cancel)
    try:
        result = engine.upscale(job, loaded.image, progress=bar.show if bar else None, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.end()
    save_image(result.image, out, parameters=loaded.parameters, icc_profile=loaded.icc_profile, exif=loaded.exif)
    extra = result.extra
    size = f"{result.image.width}x{result.image.height}"
    model = f"{extra.get('architecture', '')} x{extra.get('model_scale')}"
    print(f"{out}  {size}  {model}  {result.duration_s:.1f}s on {result.device}")
    return 0
