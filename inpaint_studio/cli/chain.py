"""`inpaint-studio chain RECIPE.json -o OUT_DIR`: several steps (text2img / inpaint / img2img), headless.

Writes each step's image, a comparison grid and record.json (the chain as run, with fixed seeds and each
step's GenerationRecord: run it again to get the same pixels). See docs/recipes.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from inpaint_studio.cli.common import (
    ProgressBar,
    add_model_access,
    cancel_on_sigint,
    make_engine,
    slug,
)
from inpaint_studio.core.errors import BadInputError, InpaintStudioError
from inpaint_studio.core.imageio import load_image, load_mask, save_image
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


def register(sub: argparse._SubParsersAction) -> None:
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
    add_model_access(c)
    c.set_defaults(func=run)


def read_recipe(path: Path) -> dict[str, Any]:
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


def run(args: argparse.Namespace) -> int:
    recipe = Path(args.recipe)
    chain = Chain.from_dict(read_recipe(recipe))
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
        image = result.images[0]
        path = out_dir / f"{index + 1:02d}-{slug(step.name or step.job.task.value)}.png"
        record = result.record()
        params = record.parameters(
            image.width,
            image.height,
            result.model.get("reference", result.job.model),
            extra={"Task": result.job.task.value, "Chain step": f"{index + 1} of {count}"},
        )
        save_image(image, path, parameters=params, icc_profile=icc, exif=exif)
        finished.append(result)
        seed = "" if record.seed_used is None else f"  seed {record.seed_used}"
        print(f"{path}  step {index + 1}/{count}{seed}  {result.duration_s:.1f}s on {result.device}")

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

    engine = make_engine(args)
    cancel = CancelToken()
    bar: list[ProgressBar] = []

    def on_event(event: Any) -> None:
        if args.quiet:
            return
        if isinstance(event, JobStarted):
            bar[:] = [ProgressBar()]  # one bar per step
        if bar:
            bar[0](event)

    previous = cancel_on_sigint(cancel)
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
