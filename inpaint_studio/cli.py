"""Command line: `inpaint-studio [IMAGE]` opens the studio; sub-commands work headless.

`inpaint` runs one job; `chain RECIPE.json -o OUT_DIR` runs a chain recipe (docs/recipes.md) and writes
every step's image, a comparison grid and the replayable record.

Exit codes: 0 ok; 2 bad input; 3 model unavailable; 4 out of memory; 130 cancelled; 1 anything else.
Every failure prints one line that names the file or parameter and says what to do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpaint_studio import __version__
from inpaint_studio.core.errors import BadInputError, CancelledError, InpaintStudioError
from inpaint_studio.core.jobspec import (
    ATTENTION_CHOICES,
    CLASSIC_MODEL,
    Area,
    ClassicalMethod,
    InpaintJob,
    MaskOptions,
    MemoryMode,
    SpeedOptions,
)

SUBCOMMANDS = ("inpaint", "chain", "replay", "models", "download", "gui")


# ---- progress ---------------------------------------------------------------------------------------------


class ProgressBar:
    """A one-line progress bar on stderr (only redrawn when it changes)."""

    def __init__(self, stream: Any = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self._last = ""

    def __call__(self, event: Any) -> None:
        from inpaint_studio.engine.events import JobFinished, JobProgress, JobStarted

        if isinstance(event, JobStarted):
            self.start = time.perf_counter()
            self._draw(0, event.total_steps, "")
        elif isinstance(event, JobProgress):
            self._draw(event.step, event.total, f" variant {event.variant + 1}")
        elif isinstance(event, JobFinished):
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, done: int, total: int, suffix: str) -> None:
        total = max(total, 1)
        filled = int(self.width * done / total)
        elapsed = time.perf_counter() - self.start
        eta = f" {elapsed / done * (total - done):.0f}s left" if done else ""
        line = f"\r[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total}{suffix}{eta}"
        if line != self._last:
            self.stream.write(line.ljust(len(self._last)))
            self.stream.flush()
            self._last = line


# ---- sub-commands ---------------------------------------------------------------------------------------


def _output_paths(out: Path, variants: int) -> list[Path]:
    if variants == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(variants)]


def _check_output(out: Path) -> None:
    from PIL import Image

    if out.suffix.lower() not in Image.registered_extensions() or out.suffix.lower() in (".gif", ".pdf"):
        raise BadInputError(f"The output {out} has no supported image extension; use .png, .jpg, .webp, .tif or .bmp.")
    if not out.parent.exists():
        raise BadInputError(f"The output folder {out.parent} does not exist; create it or choose another folder.")


def job_from_args(args: argparse.Namespace) -> InpaintJob:
    return InpaintJob(
        model=args.model,
        prompt=args.prompt,
        negative_prompt=args.negative,
        strength=args.strength,
        guidance_scale=args.guidance,
        steps=args.steps,
        scheduler=args.scheduler,
        seed=args.seed,
        variants=args.variants,
        mask=MaskOptions(grow_px=args.grow, feather_px=args.feather),
        area=Area(args.area),
        padding_px=args.padding,
        resolution=args.resolution,
        preserve_unmasked=not args.no_preserve,
        color_match=args.color_match,
        classical_method=ClassicalMethod(args.method),
        device=args.device,
        memory_mode=MemoryMode(args.memory),
        prompt_weighting=args.weighted,
        refiner=args.refiner,
        refiner_switch=args.refiner_switch,
        controlnet=args.controlnet,
        controlnet_scale=args.control_scale,
        control_start=args.control_start,
        control_end=args.control_end,
        prior_steps=args.prior_steps,
        prior_guidance_scale=args.prior_guidance,
        speed=SpeedOptions(
            attention=args.attention,
            vae_tiling=args.vae_tiling,
            channels_last=args.channels_last,
            compile_unet=args.compile,
        ),
    ).validate()


def cmd_inpaint(args: argparse.Namespace) -> int:
    from inpaint_studio.core.imageio import load_image, load_mask, save_image
    from inpaint_studio.core.parameters import format_parameters
    from inpaint_studio.engine.events import CancelToken

    job = job_from_args(args).resolved()
    out = Path(args.output)
    _check_output(out)
    loaded = load_image(Path(args.image))
    mask = load_mask(Path(args.mask), size=loaded.image.size)
    control = load_image(Path(args.control_image)).image if args.control_image else None
    engine = _engine(args)
    cancel = CancelToken()
    previous = _cancel_on_sigint(cancel)
    try:
        progress = None if args.quiet else ProgressBar()
        result = engine.run(job, loaded.image, mask, control_image=control, on_event=progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    _note_unsafe(result.model)
    model_name = result.model.get("reference", job.model)
    for path, image, seed in zip(_output_paths(out, len(result.images)), result.images, result.seeds):
        params = format_parameters(result.job, width=image.width, height=image.height, seed=seed, model_name=model_name)
        save_image(image, path, parameters=params, icc_profile=loaded.icc_profile, exif=loaded.exif)
        print(f"{path}  seed {seed}  {result.duration_s:.1f}s on {result.device}")
    return 0


def _engine(args: argparse.Namespace) -> Any:
    from inpaint_studio.engine.runner import Engine

    return Engine(allow_download=args.download, allow_unsafe_checkpoints=args.allow_unsafe_checkpoint)


def _note_unsafe(model: dict[str, Any]) -> None:
    """Say so whenever the explicit opt-in actually loaded a pickled checkpoint (the record says it too)."""
    if model.get("source") == "legacy_checkpoint":
        print(
            f"inpaint-studio: loaded the pickled checkpoint {model.get('path')} because --allow-unsafe-checkpoint "
            "was given (read weights-only).",
            file=sys.stderr,
        )


def _cancel_on_sigint(cancel: Any) -> Any:
    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.cancelled:  # a second Ctrl+C stops at once
            raise KeyboardInterrupt
        sys.stderr.write("\nCancelling after the current step... (Ctrl+C again to stop now)\n")
        cancel.cancel()

    return signal.signal(signal.SIGINT, on_sigint)


def _read_recipe(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"The recipe {path} cannot be read ({exc.strerror or exc}); check the path.") from exc
    except RecursionError as exc:
        raise BadInputError(f"The recipe {path} nests its brackets too deeply to be a recipe; fix the file.") from exc
    except ValueError as exc:
        raise BadInputError(f"The recipe {path} is not valid JSON ({exc}); fix the file.") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"The recipe {path} must hold a JSON object; see docs/recipes.md.")
    return data


def _input_paths(chain: Any, recipe: Path, overrides: list[str]) -> dict[str, str]:
    """Input name -> absolute file: the recipe's (relative to the recipe file), then --input NAME=PATH."""
    paths = {name: str((recipe.parent / str(value)).absolute()) for name, value in chain.inputs.items()}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadInputError(f"--input '{item}' must look like NAME=PATH, e.g. mask=mask.png.")
        paths[name] = str(Path(value).absolute())
    return paths


def _load_inputs(chain: Any) -> tuple[dict[str, Any], Any]:
    """Load the chain's input files; returns (name -> image, the base image's LoadedImage or None)."""
    from inpaint_studio.core.imageio import load_image, load_mask
    from inpaint_studio.engine.chain import IMAGE_INPUT

    mask_names = {step.mask for step in chain.steps if step.mask}
    loaded: dict[str, Any] = {}
    base = None
    if IMAGE_INPUT in chain.inputs:
        base = load_image(chain.inputs[IMAGE_INPUT])
        loaded[IMAGE_INPUT] = base.image
    size = base.image.size if base is not None else _text2img_size(chain)
    for name, file in chain.inputs.items():
        if name != IMAGE_INPUT:
            loaded[name] = load_mask(file, size=size) if name in mask_names else load_image(file).image
    return loaded, base


def _text2img_size(chain: Any) -> tuple[int, int] | None:
    job = chain.steps[0].job
    return (job.width, job.height) if job.width and job.height else None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")[:40] or "step"


def cmd_chain(args: argparse.Namespace) -> int:
    from inpaint_studio.core.imageio import save_image
    from inpaint_studio.core.parameters import format_parameters
    from inpaint_studio.engine.chain import (
        IMAGE_INPUT,
        Chain,
        ChainCancelled,
        ChainResult,
        comparison_grid,
        digest,
        run_chain,
    )
    from inpaint_studio.engine.events import CancelToken, JobStarted

    recipe = Path(args.recipe)
    chain = Chain.from_dict(_read_recipe(recipe))
    chain = dataclasses.replace(chain, inputs=_input_paths(chain, recipe, args.input or []))
    if args.device:
        steps = tuple(dataclasses.replace(s, job=s.job.replace(device=args.device)) for s in chain.steps)
        chain = dataclasses.replace(chain, steps=steps)
    inputs, base = _load_inputs(chain)
    chain = chain.resolved().validate(set(inputs))
    for name, recorded in chain.input_digests.items():
        if name in inputs and digest(inputs[name]) != recorded:
            warning = f"inpaint-studio: the input '{name}' differs from the recorded one; pixels will differ."
            print(warning, file=sys.stderr)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    icc, exif = (base.icc_profile, base.exif) if base is not None else (None, None)
    finished: list[Any] = []
    count = len(chain.steps)

    def on_step(index: int, result: Any) -> None:
        step = chain.steps[index]
        image, seed = result.images[0], result.seeds[0]
        path = out_dir / f"{index + 1:02d}-{_slug(step.name or step.job.task.value)}.png"
        params = format_parameters(
            result.job,
            width=image.width,
            height=image.height,
            seed=seed,
            model_name=result.model.get("reference", result.job.model),
            extra={"Task": result.job.task.value, "Chain step": f"{index + 1} of {count}"},
        )
        save_image(image, path, parameters=params, icc_profile=icc, exif=exif)
        finished.append(result)
        print(f"{path}  step {index + 1}/{count}  seed {seed}  {result.duration_s:.1f}s on {result.device}")

    def write_summary() -> None:
        record = ChainResult(chain, finished, {n: digest(v) for n, v in inputs.items()}).record()
        (out_dir / "record.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        tiles, labels = [], []
        if IMAGE_INPUT in inputs:
            tiles.append(inputs[IMAGE_INPUT])
            labels.append("base")
        first_mask = next((s.mask for s in chain.steps if s.mask), None)
        if first_mask is not None:
            tiles.append(inputs[first_mask])
            labels.append(first_mask)
        for index, result in enumerate(finished):
            tiles.append(result.images[0])
            labels.append(f"{index + 1}. {chain.steps[index].name or chain.steps[index].job.task.value}")
        if tiles:
            save_image(comparison_grid(tiles, labels), out_dir / "grid.png")

    engine = _engine(args)
    cancel = CancelToken()
    bar: list[ProgressBar] = []

    def on_event(event: Any) -> None:
        if args.quiet:
            return
        if isinstance(event, JobStarted):
            bar[:] = [ProgressBar()]  # one bar per step
        if bar:
            bar[0](event)

    previous = _cancel_on_sigint(cancel)
    try:
        run_chain(engine, chain, inputs, on_event=on_event, on_step=on_step, cancel=cancel)
    except (ChainCancelled, InpaintStudioError):
        if finished:
            write_summary()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    write_summary()
    print(f"{out_dir / 'grid.png'}  {out_dir / 'record.json'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from inpaint_studio.core.history import GENERATION_KINDS
    from inpaint_studio.core.imageio import save_image
    from inpaint_studio.core.parameters import format_parameters
    from inpaint_studio.core.project import load_project
    from inpaint_studio.core.record import record_of
    from inpaint_studio.engine.events import CancelToken
    from inpaint_studio.engine.replay import replay

    project = load_project(Path(args.project))
    history = project.history
    if history is None or not len(history):
        raise BadInputError(f"The project {args.project} has no history to replay.")
    if args.list:
        path = set(history.ancestors(history.head_id)) if history.head_id is not None else set()
        for entry in history:
            mark = "*" if entry.id in path else " "
            record = record_of(entry)
            seed = record.seed if record is not None else ""
            print(f"{mark} #{entry.id:<4} {entry.kind:<9} seed {seed!s:<11} {entry.title}")
        print("(* = on the current branch; generations are", ", ".join(GENERATION_KINDS) + ")")
        return 0
    if not args.output:
        raise BadInputError("Say where to write the results with -o OUT_DIR.")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine(args)
    cancel = CancelToken()
    previous = _cancel_on_sigint(cancel)
    differing = 0
    try:
        steps = replay(
            history,
            engine.run,
            start=args.from_entry,
            until=args.until,
            seed=args.seed,
            model=args.model,
            on_event=None if args.quiet else ProgressBar(),
            cancel=cancel,
        )
        for step in steps:
            image = step.image
            params = format_parameters(
                step.job, width=image.width, height=image.height, seed=step.job.seed or 0, model_name=step.job.model
            )
            path = out_dir / f"{step.entry_id:03d}-{_slug(step.title)}.png"
            save_image(image, path, parameters=params, icc_profile=project.document.metadata.get("icc_profile"))
            verdict = {True: "identical to the record", False: "differs from the record", None: "not compared"}
            differing += step.identical is False
            print(f"{path}  entry #{step.entry_id}  seed {step.job.seed}  {verdict[step.identical]}")
    finally:
        signal.signal(signal.SIGINT, previous)
    if differing and args.seed is None and args.model is None:
        print(
            f"inpaint-studio: {differing} result(s) differ from the record; the model files or device differ "
            "from the ones that made them.",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from inpaint_studio.engine.catalog import catalog, installed_models

    installed = {m.id: m for m in installed_models()}
    rows: list[dict[str, Any]] = [
        {"id": CLASSIC_MODEL, "name": "Classical fill (OpenCV)", "family": "classic", "installed": True}
    ]
    for entry in catalog():
        rows.append(
            {
                "id": entry.id,
                "name": entry.name,
                "family": entry.family.value,
                "installed": entry.id in installed,
                "download_gb": entry.download_gb,
                "licence": entry.licence,
            }
        )
    for model in installed.values():
        if not any(r["id"] == model.id for r in rows):
            rows.append(
                {
                    "id": model.id,
                    "name": model.id,
                    "family": model.family.value if model.family else "not an inpainting pipeline",
                    "installed": True,
                    "size_gb": round(model.size_gb, 2),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'installed':<10} {'family':<20} {'size':>8}  id")
    for row in rows:
        size = row.get("size_gb", row.get("download_gb"))
        size_text = f"{size:.1f} GB" if isinstance(size, (int, float)) else "-"
        mark = "yes" if row["installed"] else "no"
        print(f"{mark:<10} {row['family']:<20} {size_text:>8}  {row['id']}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from inpaint_studio.engine.models import download, resolve_model

    path = download(args.model_id)
    info = resolve_model(args.model_id)
    print(f"{args.model_id}: {info.family.value} model installed at {path}")
    return 0


def cmd_gui(paths: Sequence[str]) -> int:
    from inpaint_studio.ui.app import run_gui

    return run_gui(list(paths))


# ---- parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaint-studio",
        description="Inpaint Studio: repaint masked parts of images with diffusion models or a classical fill.",
        epilog="Run without a sub-command (optionally with an image path) to open the studio window.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    gui = sub.add_parser("gui", help="open the studio window (the default)")
    gui.add_argument("images", nargs="*", help="image files to open")

    p = sub.add_parser("inpaint", help="inpaint one image headless")
    p.add_argument("image", help="the image to edit")
    p.add_argument("--mask", required=True, help="mask image of the same size: white = repaint, black = keep")
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    p.add_argument("--model", default=CLASSIC_MODEL, help="hub id, diffusers folder, .safetensors file, or 'classic'")
    p.add_argument("--prompt", default="", help="what to paint into the masked area")
    p.add_argument("--negative", default="", help="what to avoid")
    defaults = InpaintJob()
    p.add_argument("--strength", type=float, default=defaults.strength, help="0-1: how much the area may change")
    p.add_argument("--guidance", type=float, default=defaults.guidance_scale, help="how closely to follow the prompt")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--scheduler", default=defaults.scheduler, help="sampler name, e.g. 'DPM++ 2M Karras', 'Euler a'")
    p.add_argument("--seed", type=int, default=None, help="a whole number; random (and printed) when omitted")
    p.add_argument("--variants", type=int, default=1, help="number of results (seeds seed, seed+1, ...)")
    p.add_argument("--area", choices=[a.value for a in Area], default=defaults.area.value)
    p.add_argument("--padding", type=int, default=defaults.padding_px, help="context around the mask, in pixels")
    p.add_argument("--resolution", type=int, default=None, help="working long side in px (default: model's own)")
    p.add_argument("--grow", type=int, default=0, help="grow (>0) or shrink (<0) the mask, in pixels")
    p.add_argument("--feather", type=int, default=defaults.mask.feather_px, help="soft edge width, in pixels")
    p.add_argument("--no-preserve", action="store_true", help="keep the model's pixels outside the mask too")
    p.add_argument("--color-match", action="store_true", help="match the fill's colours to its surroundings")
    p.add_argument("--method", choices=[m.value for m in ClassicalMethod], default="auto", help="classical method")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    p.add_argument("--memory", choices=[m.value for m in MemoryMode], default="none", help="CPU offload mode")
    p.add_argument("--download", action="store_true", help="download the model if it is not installed")
    p.add_argument(
        "--allow-unsafe-checkpoint",
        action="store_true",
        help="load a legacy pickled .ckpt/.pt/.pth you trust (refused by default: pickles can run code)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--weighted", action="store_true", help="prompt weighting: (word)1.3, word++, word-- (compel)")
    p.add_argument("--refiner", default=None, help="an SDXL refiner run after an SDXL model")
    p.add_argument("--refiner-switch", type=float, default=defaults.refiner_switch, help="share of steps before it")
    p.add_argument("--controlnet", default=None, help="ControlNet, e.g. lllyasviel/control_v11p_sd15_inpaint")
    p.add_argument("--control-scale", type=float, default=defaults.controlnet_scale, help="ControlNet strength")
    p.add_argument("--control-start", type=float, default=defaults.control_start, help="0-1: when it starts")
    p.add_argument("--control-end", type=float, default=defaults.control_end, help="0-1: when it stops")
    p.add_argument("--control-image", default=None, help="condition image for non-inpainting ControlNets")
    p.add_argument("--prior-steps", type=int, default=defaults.prior_steps, help="Kandinsky 2.2 prior steps")
    p.add_argument("--prior-guidance", type=float, default=defaults.prior_guidance_scale, help="Kandinsky prior")
    p.add_argument("--attention", choices=list(ATTENTION_CHOICES), default="auto", help="attention kernel")
    p.add_argument("--vae-tiling", choices=["auto", "on", "off"], default="auto", help="tiled VAE for big areas")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto", help="UNet memory layout")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (slow first run)")
    p.set_defaults(func=cmd_inpaint)

    c = sub.add_parser(
        "chain",
        help="run a chain recipe (text2img/inpaint/img2img steps) headless",
        description="Run a chain recipe (JSON, docs/recipes.md). Writes each step's image, grid.png and "
        "record.json (the chain as run, with fixed seeds: run it again to get the same pixels).",
    )
    c.add_argument("recipe", help="the recipe (or a record.json written by an earlier run)")
    c.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    c.add_argument("--input", action="append", metavar="NAME=PATH", help="set or replace an input file")
    c.add_argument("--device", default=None, help="run every step on this device (auto, cuda, cuda:N, mps, cpu)")
    c.add_argument("--download", action="store_true", help="download models that are not installed")
    c.add_argument(
        "--allow-unsafe-checkpoint",
        action="store_true",
        help="load a legacy pickled .ckpt/.pt/.pth you trust (refused by default: pickles can run code)",
    )
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_chain)

    r = sub.add_parser("replay", help="re-run a project's recorded generations headless")
    r.add_argument("project", help="an .inpaint project file")
    r.add_argument("-o", "--output", help="folder for the results (one PNG per generation, with parameters)")
    r.add_argument("--list", action="store_true", help="list the history entries and exit")
    r.add_argument("--from", dest="from_entry", type=int, help="start at this generation entry (default: first)")
    r.add_argument("--until", type=int, help="the branch ending at this entry (default: the current one)")
    r.add_argument("--seed", type=int, help="a new seed for the first replayed entry: a new branch")
    r.add_argument("--model", help="another model for the first replayed entry: a new branch")
    r.add_argument("--download", action="store_true", help="download a model that is not installed")
    r.add_argument(
        "--allow-unsafe-checkpoint",
        action="store_true",
        help="load a legacy pickled .ckpt/.pt/.pth you trust (refused by default: pickles can run code)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_replay)

    m = sub.add_parser("models", help="list the model catalog and the installed models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("download", help="download a model from the Hugging Face hub into the local cache")
    d.add_argument("model_id")
    d.set_defaults(func=cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        return cmd_gui(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "gui":
        return cmd_gui(args.images)
    try:
        return int(args.func(args))
    except CancelledError as exc:
        print(f"\ninpaint-studio: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninpaint-studio: stopped; nothing was written.", file=sys.stderr)
        return CancelledError.exit_code
    except InpaintStudioError as exc:
        print(f"inpaint-studio: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
