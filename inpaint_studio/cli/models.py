"""`inpaint-studio models` (the one model list the studio shows too) and `inpaint-studio download ID`.

`models --add PATH` / `--remove PATH` edit the user's own models (core/user_models.py), the same list the
studio's "+" button adds to.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from inpaint_studio.cli.common import add_server_access, make_remote_engine
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.engine.addons import download_addon, is_installed
from inpaint_studio.engine.catalog import addon_catalog, addon_entry, installed_models
from inpaint_studio.engine.model_list import add_user_model, model_choices
from inpaint_studio.engine.models import download, resolve_model
from inpaint_studio.engine.segmentation import is_segmenter_folder, is_segmenter_installed, segmenter_catalog


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the models: catalog, installed, and your own folders and files")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m.add_argument("--add", metavar="PATH", help="add your own model folder or .safetensors file to the list")
    m.add_argument("--remove", metavar="PATH", help="remove one of your own models from the list")
    m.add_argument("--addons", action="store_true", help="list the add-ons instead: LoRAs, IP-Adapters, upscalers")
    add_server_access(m)
    m.set_defaults(func=run)
    d = sub.add_parser("download", help="download a model from the Hugging Face hub into the local cache")
    d.add_argument("model_id")
    d.set_defaults(func=run_download)


def addon_rows() -> list[dict[str, Any]]:
    """The add-on catalog with what is installed (LoRAs for fast mode, IP-Adapters, upscalers)."""
    rows = []
    for entry in addon_catalog():
        family = None if entry.family == "any" else entry.family
        rows.append(
            {
                "id": entry.id,
                "name": entry.name,
                "kind": entry.kind,
                "family": entry.family,
                "installed": is_installed(entry.id, entry.kind, family),  # type: ignore[arg-type]
                "download_gb": entry.download_gb,
                "licence": entry.licence,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    if args.server:
        return run_remote(args)
    if args.addons:
        rows = addon_rows()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'installed':<10} {'kind':<11} {'for':<5} {'size':>8}  id  (licence)")
        for row in rows:
            mark = "yes" if row["installed"] else "no"
            size = f"{row['download_gb']:.2f} GB"
            print(f"{mark:<10} {row['kind']:<11} {row['family']:<5} {size:>8}  {row['id']}  ({row['licence']})")
        return 0
    user_models = UserModels.load()
    if args.add:
        reference = add_user_model(args.add, user_models)  # checks it is a model (configs only)
        print(f"Added {reference}; the studio lists it too.")
    if args.remove:
        removed = user_models.remove(args.remove)
        print(f"Removed {args.remove}." if removed else f"{args.remove} was not in your list.")
    installed = installed_models()
    rows: list[dict[str, Any]] = [choice.to_row() for choice in model_choices(installed, user_models.paths)]
    listed = {row["id"] for row in rows}
    for model in installed:  # cached repositories that are not inpainting pipelines: listed, never offered
        if model.id not in listed:
            rows.append(
                {
                    "id": model.id,
                    "name": model.id,
                    "source": "cached",
                    "family": "not an inpainting pipeline",
                    "installed": True,
                    "size_gb": round(model.size_gb, 2),
                }
            )
    for entry in segmenter_catalog():  # the Select tool's models (`inpaint-studio select --model`)
        rows.append(
            {
                "id": entry.id,
                "name": entry.name,
                "source": "catalog",
                "family": f"selection ({entry.model_type})",
                "installed": is_segmenter_installed(entry.id),
                "download_gb": round(entry.download_mb / 1000, 3),
                "licence": entry.licence,
            }
        )
    return print_rows(rows, as_json=args.json)


def run_remote(args: argparse.Namespace) -> int:
    """`models --server URL`: the models the server can run (its own list, not this computer's)."""
    if args.add or args.remove:
        raise BadInputError(
            "--add and --remove edit this computer's list; on a server, add models with "
            "`inpaint-studio models --add` there, or start it with `inpaint-studio serve --model PATH`."
        )
    engine = make_remote_engine(args)
    try:
        rows = engine.models()
        if not args.json:
            print(f"Models on {engine.describe()[1]}:")
    finally:
        engine.close()
    return print_rows(rows, as_json=args.json)


def print_rows(rows: list[dict[str, Any]], *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'installed':<10} {'family':<20} {'size':>8}  id")
    for row in rows:
        size = row.get("size_gb", row.get("download_gb"))
        size_text = "-"
        if isinstance(size, int | float):
            size_text = f"{size:.1f} GB" if size >= 0.1 else f"{size * 1000:.0f} MB"  # MI-GAN is 30 MB
        mark = "yes" if row["installed"] else "no"
        print(f"{mark:<10} {row['family']:<20} {size_text:>8}  {row['id']}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    entry = addon_entry(args.model_id)
    if entry is not None or args.model_id.count("/") >= 2:
        if entry is not None:  # size and licence first: a download is only ever started knowing both
            print(f"Downloading {entry.offer()}", flush=True)
        path = download_addon(args.model_id)
        print(f"{args.model_id}: installed in {path}")
        return 0
    path = download(args.model_id)
    if is_segmenter_folder(path):
        print(f"{args.model_id}: selection model installed at {path} (use it with `inpaint-studio select` or W)")
        return 0
    info = resolve_model(args.model_id)
    print(f"{args.model_id}: {info.family.value} model installed at {path}")
    return 0
