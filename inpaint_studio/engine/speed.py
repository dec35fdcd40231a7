"""Speed and memory settings (SpeedOptions) applied to a pipeline before each call.

Each setting is a toggle on modules that from_pipe variants share, so it is set before every call rather
than once at load time; `resolve()` turns "auto" into the device default and its dict is what the result
records. Defaults (docs/models.md): PyTorch SDPA attention except on Apple GPUs (sliced: lower peak memory
where memory is shared with the system), VAE tiling only above 4x the model's native pixel count,
channels_last on CUDA (faster convolutions with tensor cores), torch.compile only when asked for.
"""

from __future__ import annotations

import logging
import weakref
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


def resolve(options: SpeedOptions, device: str, work_size: tuple[int, int], native: int) -> dict[str, Any]:
    """The settings actually used for a call of `work_size` pixels on `device` ("auto" resolved)."""
    attention = options.attention
    if attention == AUTO:
        attention = "sliced" if device == "mps" else "sdpa"
    if options.vae_tiling == AUTO:
        vae_tiling = work_size[0] * work_size[1] > 4 * native * native
    else:
        vae_tiling = options.vae_tiling == ON
    if options.channels_last == AUTO:
        channels_last = device.startswith("cuda")
    else:
        channels_last = options.channels_last == ON
    return {
        "attention": attention,
        "vae_tiling": vae_tiling,
        "channels_last": channels_last,
        "compile_unet": options.compile_unet,
    }


def denoiser_pipes(pipe: Any) -> list[Any]:
    """The pipeline and, for combined pipelines (Kandinsky), the sub-pipeline that holds the UNet."""
    inner = getattr(pipe, "decoder_pipe", None)
    return [pipe] if inner is None else [pipe, inner]


def original_unet(unet: Any) -> Any:
    return getattr(unet, "_orig_mod", unet)


def apply(pipe: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Put `pipe` into the state `settings` describes; returns `settings` with unsupported toggles off."""
    applied = dict(settings)
    _set_attention(pipe, sliced=settings["attention"] == "sliced")
    applied["vae_tiling"] = _set_vae_tiling(pipe, settings["vae_tiling"])
    _set_channels_last(pipe, settings["channels_last"])
    _set_compiled(pipe, settings["compile_unet"])
    return applied


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


def _set_compiled(pipe: Any, on: bool) -> None:
    import torch

    for sub in denoiser_pipes(pipe):
        unet = original_unet(sub.unet)
        if not on:
            if sub.unet is not unet:
                sub.unet = unet
            continue
        compiled = _compiled.get(unet)
        if compiled is None:
            # dynamic=True: one graph for every working size instead of a recompile per new size.
            compiled = torch.compile(unet, backend=COMPILE_BACKEND, dynamic=True)
            _compiled[unet] = compiled
        if sub.unet is not compiled:
            sub.unet = compiled


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
