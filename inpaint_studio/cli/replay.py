"""`inpaint-studio replay PROJECT -o OUT_DIR`: re-create a project's recorded results, headless.

`--list` shows the history; `--from N --seed S` (or `--model M`) branches from an entry. Every result is
compared with the recorded one: on the same model files and device they are bit-identical.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from inpaint_studio.cli.common import (
    ProgressBar,
    add_model_access,
    cancel_on_sigint,
    make_engine,
    slug,
)
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history import GENERATION_KINDS
from inpaint_studio.core.imageio import save_image
from inpaint_studio.core.parameters import format_parameters
from inpaint_studio.core.project import load_project
from inpaint_studio.core.record import record_of
from inpaint_studio.engine.events import CancelToken
from inpaint_studio.engine.replay import replay


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("replay", help="re-run a project's recorded generations headless")
    r.add_argument("project", help="an .inpaint project file")
    r.add_argument("-o", "--output", help="folder for the results (one PNG per generation, with parameters)")
    r.add_argument("--list", action="store_true", help="list the history entries and exit")
    r.add_argument("--from", dest="from_entry", type=int, help="start at this generation entry (default: first)")
    r.add_argument("--until", type=int, help="the branch ending at this entry (default: the current one)")
    r.add_argument("--seed", type=int, help="a new seed for the first replayed entry: a new branch")
    r.add_argument("--model", help="another model for the first replayed entry: a new branch")
    add_model_access(r)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    engine = make_engine(args)
    cancel = CancelToken()
    previous = cancel_on_sigint(cancel)
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
            if step.record is not None:
                params = step.record.parameters(image.width, image.height, step.job.model)
            else:
                params = format_parameters(
                    step.job, width=image.width, height=image.height, seed=step.job.seed or 0, model_name=step.job.model
                )
            path = out_dir / f"{step.entry_id:03d}-{slug(step.title)}.png"
            save_image(image, path, parameters=params, icc_profile=project.document.metadata.get("icc_profile"))
            verdict = {True: "identical to the record", False: "differs from the record", None: "not compared"}
            differing += step.identical is False
            seed = "" if step.record is not None and step.record.seed_used is None else f"  seed {step.job.seed}"
            print(f"{path}  entry #{step.entry_id}{seed}  {verdict[step.identical]}")
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
