"""Loading torch, diffusers and transformers in a background thread without stalling the window.

Python threads share one interpreter lock (the GIL), so a background import stalls the UI thread whenever
it holds the lock for long without a break. Measured on 2 cores (importing torch + diffusers' inpainting
pipelines takes 3-7 s in all), three things did that, each for 100-450 ms at a time:

1. the dynamic loader mapping libtorch_cpu.so (400 MB) and running its static initialisers, inside the
   import of torch._C, which holds the lock throughout. `preload_torch_libraries` loads those libraries
   first through a ctypes call of dlopen: ctypes releases the lock around foreign calls, so the UI keeps
   running while the loader works, and the later `import torch` finds them loaded.
2. full garbage collections: an import creates a million objects, and each oldest-generation collection
   walks all of them (5-7 collections of 100-260 ms). `import_engine_libraries` pauses collection during
   the imports and then freezes what exists (gc.freeze: the modules live as long as the process, so later
   collections never walk them again; the pattern the Python documentation gives for pre-loaded servers).
3. transformers' fallback warnings: not a stall, but noise on every start (see
   `prefer_pil_image_processors`).

Nothing here imports torch at module level; every function runs in the worker (or the command line).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# One import at a time: a host that replaces an abandoned one may start while the old one still imports,
# and diffusers' lazy modules fail ("cannot import name") when imported concurrently.
IMPORT_LOCK = threading.Lock()
# The C++ libraries of torch that need no Python while they load (libtorch_python.so does, so Python loads
# it). CUDA builds' libraries are left to torch, which loads its CUDA dependencies in its own order.
PRELOADED = ("libc10.so", "libtorch_cpu.so")
# transformers image processors that diffusers imports by their old names; without torchvision transformers
# binds these names to their PIL versions on first use, with a warning each (see prefer_pil_image_processors).
DIFFUSERS_IMAGE_PROCESSORS = (
    "CLIPImageProcessor",
    "SiglipImageProcessor",
    "Siglip2ImageProcessor",
    "GlmImageProcessor",
    "DPTImageProcessor",
)


def torch_library_folder() -> Path | None:
    """torch's lib folder, found without importing torch; None when torch is not installed."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return folder if folder.is_dir() else None


def preload_torch_libraries() -> list[str]:
    """Map torch's C++ libraries with the interpreter lock released (Linux); returns the names loaded.

    A library that cannot be loaded this way is simply left to `import torch` (which then reports any
    real problem itself).
    """
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return []
    folder = torch_library_folder()
    if folder is None:
        return []
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return []
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    loaded = []
    for name in PRELOADED:
        path = folder / name
        # RTLD_LOCAL, as when torch._C pulls it in as a dependency: the symbols stay where torch expects them.
        if path.is_file() and dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL):
            loaded.append(name)
    return loaded


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No garbage collection inside; afterwards every object that exists is frozen (see the docstring)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def short_gil_turns(seconds: float = 0.001) -> Iterator[None]:
    """A shorter GIL switch interval while a background thread runs a long CPU-bound import.

    The UI thread gives the GIL up around almost every Qt call (PySide releases it), and each time it wants it
    back it may wait a whole switch interval (5 ms by default) for the importing thread: a repaint or a timer
    that crosses into Qt ten times then waits 50 ms (the "convoy effect"). One millisecond turns make that a
    tenth; the import takes a few percent longer. The interval is process-wide, so it is restored afterwards.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def prefer_pil_image_processors() -> list[str]:
    """Without torchvision, bind the image processor names diffusers imports to transformers' PIL versions.

    transformers 5 made the torchvision-based processors the default under the old names and, when
    torchvision is missing, falls back to the PIL versions with a warning per name on first use: three
    warnings on every start and command, about models this app never asks to process images with (the
    processors are only built for safety checkers and image encoders). Binding the names up front is the
    same fallback without the warning; every other transformers warning is untouched, and with torchvision
    installed nothing changes. Returns the names bound.
    """
    import transformers
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return []
    pil_versions = {}
    for name in DIFFUSERS_IMAGE_PROCESSORS:
        try:
            pil_versions[name] = getattr(transformers, f"{name}Pil")
        except (AttributeError, ImportError, RuntimeError):
            continue  # this transformers has no PIL version under that name: its own fallback applies
    # Importing a model's module can put a new lazy "transformers" module into sys.modules: bind the names
    # on the one diffusers will import from.
    module = sys.modules.get("transformers", transformers)
    bound = []
    for name, pil_version in pil_versions.items():
        if module.__dict__.get(name) is not pil_version:
            setattr(module, name, pil_version)
            bound.append(name)
    return bound


def import_engine_libraries() -> float:
    """Import torch, transformers and diffusers' inpainting pipelines as gently as possible for a window
    running beside; returns the seconds it took (0 when they were already imported)."""
    with IMPORT_LOCK:
        if "diffusers.pipelines.auto_pipeline" in sys.modules:
            return 0.0
        start = time.perf_counter()
        preloaded = preload_torch_libraries()
        with collection_paused(), short_gil_turns():
            import torch  # noqa: F401

            prefer_pil_image_processors()
            # diffusers imports its pipelines lazily: touching the classes the loader uses imports them (and
            # transformers) now, so the first job does not do it while the user works.
            from diffusers import AutoPipelineForInpainting, StableDiffusionInpaintPipeline  # noqa: F401
        seconds = time.perf_counter() - start
        log.info("engine libraries imported in %.2f s (preloaded %s)", seconds, ", ".join(preloaded) or "nothing")
        return seconds
