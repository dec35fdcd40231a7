"""The one lock around the heavy first imports (torch, diffusers, transformers) of the studio's worker threads.

diffusers and transformers import their classes lazily; two threads importing them at once fail with
"cannot import name ..." (seen when a fresh engine host started while an abandoned one was still importing).
The generation thread (worker.py) and the interactive thread (interactive.py) both take this lock for their
first imports.
"""

from __future__ import annotations

import threading

IMPORT_LOCK = threading.Lock()
