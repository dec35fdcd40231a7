"""Device and precision choice: cuda > mps > cpu, fp16 on CUDA, fp32 elsewhere.

torch is imported inside the functions: importing this module stays cheap for the GUI.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import MemoryMode

if TYPE_CHECKING:
    import torch


def available_devices() -> list[str]:
    """Devices torch can use here, best first ("cuda:0", ..., "mps", "cpu")."""
    import torch

    out = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def pick_device(requested: str = "auto") -> str:
    """Resolve "auto" to the best device; check an explicit choice exists (clear message if not)."""
    devices = available_devices()
    if requested in ("", "auto"):
        return devices[0]
    if requested == "cuda":
        requested = "cuda:0"
    if requested not in devices:
        raise BadInputError(
            f"The device '{requested}' is not available on this computer; choose one of: {', '.join(devices)}."
        )
    return requested


def pick_dtype(device: str) -> torch.dtype:
    """fp16 on CUDA (SDXL's VAE keeps its force_upcast, so it cannot overflow); fp32 on CPU and MPS.

    MPS stays in fp32: fp16 inpainting crashes or produces black images on several macOS/torch versions.
    """
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


def is_accelerator(device: str) -> bool:
    return device.startswith("cuda") or device == "mps"


def check_memory_mode(mode: MemoryMode, device: str) -> None:
    """CPU offload moves weights between the CPU and an accelerator: without one it cannot work."""
    if mode is not MemoryMode.NONE and not device.startswith("cuda"):
        raise BadInputError(
            f"Memory mode '{mode.value}' needs an NVIDIA GPU, but this job runs on '{device}'; use memory mode 'none'."
        )


def describe_device(device: str) -> str:
    """A short human label for the status bar and history, e.g. 'NVIDIA H100 (80 GB)' or 'CPU (8 threads)'."""
    import torch

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return f"{props.name} ({props.total_memory / 2**30:.0f} GB)"
    if device == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'} of {os.cpu_count()} cores)"
