"""Speed and memory settings (SpeedOptions) applied to a pipeline before each call.

Each setting is a toggle on modules that from_pipe variants share, so it is set before every call rather
than once at load time; `resolve()` turns "auto" into the device default and its dict is what the result
records. Defaults (docs/models.md): PyTorch SDPA attention except on Apple GPUs (sliced: lower peak memory
where memory is shared with the system), VAE tiling only above 4x the model's native pixel count,
channels_last on CUDA (faster convolutions with tensor cores), torch.compile only when asked for.

The "fastest" preset (SpeedOptions.preset) follows diffusers' speed guides: fused QKV projections (one matrix
multiply instead of three per attention), channels_last, and on CUDA torch.compile of the UNet with
max-autotune (without CUDA graphs: the step callback and changing working sizes would re-record them). The
first compiled call compiles (a minute or more on a GPU, in the engine's thread, never the window's);
inductor's compiled artifacts are then saved in the app's cache folder and loaded before the next compile
(torch.compiler.save/load_cache_artifacts), so later sessions warm up from disk. Fused QKV is left off where
it would change what is painted: with sliced attention and with an IP-Adapter (whose attention processors
it would replace).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import EngineError
from inpaint_studio.core.jobspec import AUTO, ON, SpeedOptions

log = logging.getLogger(__name__)

COMPILE_BACKEND: Any = "inductor"
"""torch.compile backend; a test swaps in a counting backend (the CPU inductor needs a C++ compiler)."""

# Original attention processors of modules switched to sliced attention, to restore them exactly: the
# "disable slicing" path of diffusers installs plain processors, which differ from the loaded ones.
_saved_processors: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
# Compiled UNet per original UNet: compiled once, reused by every job and every from_pipe variant.
_compiled: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
# UNets currently in channels_last layout (converting is a copy of every conv weight: only on a change).
_channels_last: weakref.WeakSet[Any] = weakref.WeakSet()
# Models (UNet, VAE) whose attention runs on fused QKV projections.
_fused_qkv: weakref.WeakSet[Any] = weakref.WeakSet()
FASTEST_COMPILE_MODE = "max-autotune-no-cudagraphs"
CACHE_ENV = "INPAINT_STUDIO_CACHE_DIR"  # where compiled artifacts are kept (default: the user cache folder)
_cache_lock = threading.Lock()
_cache_loaded = False
# Compiled UNets that have not finished a call yet: their first call compiles (the warm-up).
_cold: weakref.WeakSet[Any] = weakref.WeakSet()


def resolve(
    options: SpeedOptions, device: str, work_size: tuple[int, int], native: int, *, ip_adapter: bool = False
) -> dict[str, Any]:
    """The settings actually used for a call of `work_size` pixels on `device` ("auto" resolved)."""
    fastest = options.preset == "fastest"
    attention = options.attention
    if attention == AUTO:
        attention = "sliced" if device == "mps" and not fastest else "sdpa"
    if ip_adapter:
        attention = "sdpa"  # the IP-Adapter's processors are SDPA ones; slicing would replace them
    if options.vae_tiling == AUTO:
        vae_tiling = work_size[0] * work_size[1] > 4 * native * native
    else:
        vae_tiling = options.vae_tiling == ON
    if options.channels_last == AUTO:
        channels_last = device.startswith("cuda") or fastest
    else:
        channels_last = options.channels_last == ON
    fuse_qkv = fastest if options.fuse_qkv == AUTO else options.fuse_qkv == ON
    fuse_qkv = fuse_qkv and attention == "sdpa" and not ip_adapter
    settings = {
        "attention": attention,
        "vae_tiling": vae_tiling,
        "channels_last": channels_last,
        # torch.compile on a CPU needs a C++ toolchain and gains little: the preset compiles on CUDA only.
        "compile_unet": options.compile_unet or (fastest and device.startswith("cuda")),
    }
    if fastest or options.fuse_qkv != AUTO:  # recorded only when asked for (older records stay the same)
        settings["fuse_qkv"] = fuse_qkv
    if fastest:
        settings["preset"] = "fastest"
    return settings


def denoiser_pipes(pipe: Any) -> list[Any]:
    """The pipeline and, for combined pipelines (Kandinsky), the sub-pipeline that holds the UNet."""
    inner = getattr(pipe, "decoder_pipe", None)
    return [pipe] if inner is None else [pipe, inner]


def original_unet(unet: Any) -> Any:
    return getattr(unet, "_orig_mod", unet)


def apply(pipe: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Put `pipe` into the state `settings` describes; returns `settings` with unsupported toggles off."""
    applied = dict(settings)
    if not settings.get("fuse_qkv"):
        _set_fused_qkv(pipe, False)  # before the processors change: unfusing restores the ones it saved
    _set_attention(pipe, sliced=settings["attention"] == "sliced")
    if settings.get("fuse_qkv"):
        applied["fuse_qkv"] = _set_fused_qkv(pipe, True)
    applied["vae_tiling"] = _set_vae_tiling(pipe, settings["vae_tiling"])
    _set_channels_last(pipe, settings["channels_last"])
    mode = FASTEST_COMPILE_MODE if settings.get("preset") == "fastest" else None
    _set_compiled(pipe, settings["compile_unet"], mode)
    return applied


def plain_modules(pipe: Any) -> None:
    """The pipeline's own modules, unwrapped: no compiled UNet attached, no sliced or fused attention (add-ons
    are put on these; `apply` restores the speed settings for the call)."""
    for sub in denoiser_pipes(pipe):
        unet = getattr(sub, "unet", None)
        if unet is not None and unet is not original_unet(unet):
            sub.unet = original_unet(unet)
    _set_fused_qkv(pipe, False)
    _set_attention(pipe, sliced=False)


def _qkv_models(pipe: Any) -> list[Any]:
    models = [original_unet(getattr(pipe, "unet", None)), getattr(pipe, "vae", None)]
    return [m for m in models if m is not None and hasattr(m, "fuse_qkv_projections")]


def _set_fused_qkv(pipe: Any, on: bool) -> bool:
    """Fused query/key/value projections on the UNet and the VAE (diffusers' fuse_qkv_projections); the original
    projections stay, so unfusing gives the exact unfused computation back."""
    models = _qkv_models(pipe)
    if on and not models:
        return False
    for model in models:
        if on and model not in _fused_qkv:
            try:
                model.fuse_qkv_projections()
            except ValueError:  # added KV projections (not SD/SDXL): leave it unfused
                return False
            _fused_qkv.add(model)
        elif not on and model in _fused_qkv:
            model.unfuse_qkv_projections()
            _drop_fused_weights(model)
            _fused_qkv.discard(model)
    return on


def _drop_fused_weights(model: Any) -> None:
    """The fused copies of the projection weights are not used once unfused: return their memory (fusing
    again builds them afresh from the projections, which may have changed meanwhile: LoRAs)."""
    for module in model.modules():
        for name in ("to_qkv", "to_kv", "to_added_qkv"):
            if getattr(module, name, None) is not None:
                delattr(module, name)
        if hasattr(module, "fused_projections"):
            module.fused_projections = False


def _attention_modules(pipe: Any) -> list[Any]:
    import torch

    modules = []
    for sub in denoiser_pipes(pipe):
        for module in sub.components.values():
            if isinstance(module, torch.nn.Module) and hasattr(module, "set_attention_slice"):
                modules.append(original_unet(module))
    return list({id(m): m for m in modules}.values())


def _set_attention(pipe: Any, *, sliced: bool) -> None:
    for module in _attention_modules(pipe):
        if sliced and module not in _saved_processors:
            _saved_processors[module] = dict(module.attn_processors)
            module.set_attention_slice("auto")
        elif not sliced and module in _saved_processors:
            module.set_attn_processor(_saved_processors.pop(module))


def _set_vae_tiling(pipe: Any, on: bool) -> bool:
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return False  # Kandinsky's MoVQ has no tiled decode
    if on:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    return on


def _set_channels_last(pipe: Any, on: bool) -> None:
    import torch

    unet = original_unet(pipe.unet)
    if (unet in _channels_last) != on:
        unet.to(memory_format=torch.channels_last if on else torch.contiguous_format)
        if on:
            _channels_last.add(unet)
        else:
            _channels_last.discard(unet)


def _set_compiled(pipe: Any, on: bool, mode: str | None = None) -> None:
    import torch

    for sub in denoiser_pipes(pipe):
        unet = original_unet(sub.unet)
        if not on:
            if sub.unet is not unet:
                sub.unet = unet
            continue
        held = _compiled.get(unet)
        compiled = held[1] if held is not None and held[0] == mode else None
        if compiled is None:
            load_compile_cache()
            # dynamic=True: one graph for every working size instead of a recompile per new size.
            options: dict[str, Any] = {"backend": COMPILE_BACKEND, "dynamic": True}
            if mode is not None and COMPILE_BACKEND == "inductor":
                options["mode"] = mode
            compiled = torch.compile(unet, **options)
            _compiled[unet] = (mode, compiled)
            _cold.add(compiled)
        if sub.unet is not compiled:
            sub.unet = compiled


def compile_cache_file() -> Path:
    """Where inductor's compiled artifacts are kept between sessions (one file per torch version)."""
    import torch

    folder = os.environ.get(CACHE_ENV)
    if folder:
        root = Path(folder)
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("InpaintStudio", appauthor=False))
    return root / "torch-compile" / f"artifacts-torch{torch.__version__}.bin"


def load_compile_cache() -> bool:
    """Load the saved compiled artifacts once per process, before the first compile (a warm start); False when
    there were none or they did not fit this torch (they are then rebuilt and saved again)."""
    global _cache_loaded
    import torch

    with _cache_lock:
        if _cache_loaded:
            return False
        _cache_loaded = True
        path = compile_cache_file()
        if not path.is_file() or not hasattr(torch.compiler, "load_cache_artifacts"):
            return False
        try:
            torch.compiler.load_cache_artifacts(path.read_bytes())
        except Exception as exc:  # a cache from another build: start cold, never fail the job
            log.info("compiled artifacts in %s not used (%s)", path, exc)
            return False
        log.info("loaded compiled artifacts from %s", path)
        return True


def save_compile_cache() -> Path | None:
    """Save inductor's compiled artifacts after a compile (written atomically); None when nothing to save."""
    import torch

    if not hasattr(torch.compiler, "save_cache_artifacts"):
        return None
    try:
        saved = torch.compiler.save_cache_artifacts()
    except Exception as exc:
        log.info("compiled artifacts not saved (%s)", exc)
        return None
    if not saved:
        return None
    data, _info = saved
    path = compile_cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def is_compiled(pipe: Any) -> bool:
    return any(getattr(sub, "unet", None) is not original_unet(sub.unet) for sub in denoiser_pipes(pipe))


def warming_up(pipe: Any) -> bool:
    """True when the pipeline's next call compiles its UNet (the first call of a newly compiled UNet)."""
    return any(getattr(sub, "unet", None) in _cold for sub in denoiser_pipes(pipe))


def warmed_up(pipe: Any) -> Path | None:
    """The first compiled call finished: save inductor's artifacts for the next session's warm start."""
    done = [sub.unet for sub in denoiser_pipes(pipe) if getattr(sub, "unet", None) in _cold]
    for unet in done:
        _cold.discard(unet)
    if done and COMPILE_BACKEND == "inductor":
        return save_compile_cache()
    return None


def compile_failed(exc: BaseException) -> EngineError | None:
    """An EngineError for a failure of torch.compile's backend (None when `exc` is something else)."""
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    if not names & {"BackendCompilerFailed", "InductorError", "CppCompileError", "TorchRuntimeError"}:
        return None
    return EngineError(
        f"Compiling the UNet failed on this computer ({type(exc).__name__}); turn 'compile UNet' off and try again."
    )


def forget_compiled(pipe: Any) -> None:
    """Drop a compiled UNet that failed, so the next job runs the plain one."""
    for sub in denoiser_pipes(pipe):
        unet = original_unet(sub.unet)
        _compiled.pop(unet, None)
        sub.unet = unet
    log.warning("torch.compile failed; the UNet runs uncompiled")
