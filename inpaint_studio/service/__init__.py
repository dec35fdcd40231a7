"""The engine beyond one machine, on Ray: `inpaint-studio serve` (Ray Serve) and `inpaint-studio batch` (Ray Data).

A layer on top of engine/ (engine and core never import it; the studio reaches a server only through
engine/remote.py, the HTTP client). Ray is an optional extra (`pip install inpaint-studio[cluster]`): only
`deployment`, `launch` and `batch` import it, and only the `serve` / `batch` commands import those.

- `jobs`: the HTTP API of one replica (submit, event stream, cancel, models, health); `auth`: the token;
  `limits`: upload limits and loading; `policy`: which models a client may name; `config`: the settings;
- `deployment`: the Ray Serve deployment (model multiplexing, cancel board), `launch`: start and stop;
- `batch_plan`: pairing, skipping and the report of a folder batch; `batch`: running it on Ray Data.
"""
