"""`inpaint-studio serve`: this computer's engine as a service on Ray Serve (docs/remote.md).

Listens on 127.0.0.1 by default; listening anywhere else needs a token (--token-file or
INPAINT_STUDIO_TOKEN), or it is refused (exit 2). Ctrl+C or SIGTERM stops it cleanly. Needs the optional
`cluster` extra (Ray); nothing here imports Ray before the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.engine.remote import token_from

if TYPE_CHECKING:
    from inpaint_studio.service.config import ServiceConfig


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "serve",
        help="run the engine as a service on Ray Serve, for the studio and --server clients",
        description="Deploy the engine on Ray Serve and serve the HTTP API (docs/remote.md). Without "
        "--ray-address a private Ray starts on this computer.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1: this computer only]")
    s.add_argument("--port", type=int, default=8000, help="port [8000]")
    s.add_argument("--token-file", metavar="FILE", help="the token clients must send (default: $INPAINT_STUDIO_TOKEN)")
    s.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (e.g. auto, or ray://head:10001)")
    s.add_argument("--replicas", type=int, default=1, help="engine replicas (the lower bound with --max-replicas) [1]")
    s.add_argument("--max-replicas", type=int, help="autoscale up to this many replicas while jobs wait")
    s.add_argument("--gpus-per-replica", type=float, default=0.0, help="GPU share of a replica, e.g. 1 or 0.5 [0]")
    s.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPU cores reserved per replica [1]")
    s.add_argument("--models-per-replica", type=int, default=2, help="pipelines a replica keeps loaded (LRU) [2]")
    s.add_argument(
        "--model", action="append", default=[], metavar="PATH", help="offer this model folder or .safetensors file"
    )
    s.add_argument("--allow-download", action="store_true", help="download hub models that clients ask for")
    s.add_argument("--max-upload-mb", type=float, default=256, help="largest request accepted, in MB [256]")
    s.add_argument("--max-megapixels", type=float, default=100, help="largest image accepted, in megapixels [100]")
    s.set_defaults(func=run)


def require_ray() -> None:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise BadInputError(
            "This command needs Ray, which this installation does not have; install the cluster extra: "
            "pip install 'inpaint-studio[cluster]'."
        ) from exc


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    from inpaint_studio.service import auth
    from inpaint_studio.service.config import ServiceConfig

    token = token_from(args.token_file)
    auth.check_listen(args.host, token)
    if token is not None:
        auth.check_token_strength(token)
    return ServiceConfig(
        host=args.host,
        port=args.port,
        token_digest=auth.digest(token) if token else None,
        allow_download=args.allow_download,
        models=tuple(args.model),
        models_per_replica=args.models_per_replica,
        replicas=args.replicas,
        max_replicas=args.max_replicas,
        gpus_per_replica=args.gpus_per_replica,
        cpus_per_replica=args.cpus_per_replica,
        max_upload_mb=args.max_upload_mb,
        max_megapixels=args.max_megapixels,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # refuses an open address without a token before Ray starts
    require_ray()
    from inpaint_studio.service.launch import serve_until_signal

    def ready(url: str) -> None:
        scaling = f"{args.replicas}" + (f" to {args.max_replicas}" if args.max_replicas else "")
        secured = "token required" if config.token_digest else "no token: this computer only"
        print(f"Inpaint Studio engine ready at {url} ({scaling} replica(s); {secured}). Stop with Ctrl+C.", flush=True)

    serve_until_signal(config, args.ray_address, ready)
    print("inpaint-studio: the engine service stopped.", file=sys.stderr)
    return 0
