"""Which removal network a file holds, decided without loading it: no torch, nothing unpickled, nothing run.

Used by model resolution (models.py) to tell a removal network from a Stable Diffusion checkpoint before
anything is read for real, so a pickled SD checkpoint is still refused by its name alone while a LaMa or MAT
`.pth` goes on to the weights-only loader (engine/removal.py, spandrel_models.read_weights).

- `.safetensors`: the tensor names in the file's JSON header;
- `.pth` / `.pt`: the text constants of the pickle, listed by `pickletools.genops`, which parses opcodes and
  never calls or builds anything. A torch.save zip keeps them in `*/data.pkl`; the legacy format is a short
  run of pickles at the start of the file. In a TorchScript archive (how IOPaint ships big-lama) the same
  data.pkl holds the module tree: the attribute names ("bn_l", "convl2l", ...) instead of dotted keys;
- `.onnx`: an ONNX graph runs no Python; it is taken as an MI-GAN pipeline, whose inputs and outputs the
  loader checks (a graph with others is refused with one sentence there).

A file whose names merely look like a removal network is not trusted for that: it is then read with the
weights-only loaders, which refuse anything but tensors.
"""

from __future__ import annotations

import io
import json
import pickletools
import struct
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

LAMA = "LaMa"
MAT = "MAT"
MIGAN = "MI-GAN"

# Names that only these networks' weights contain (spandrel's detection keys, split into their parts so that
# the attribute names of a TorchScript module tree match too).
_SIGNATURES = {
    LAMA: frozenset({"bn_l", "convl2l", "convg2g", "running_mean"}),
    MAT: frozenset({"synthesis", "first_stage", "conv_first", "resample_filter"}),
}
_MAX_HEADER = 100_000_000
_MAX_PICKLE = 64_000_000  # a state dict's pickle holds names and storage ids, never the weights themselves
_LEGACY_PICKLES = 4  # magic number, protocol, system info, then the object itself


def removal_architecture(path: Path) -> str | None:
    """LAMA, MAT or MIGAN when `path` holds such a network (judged from names only), else None."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return MIGAN
    try:
        if suffix == ".safetensors":
            names: Iterable[str] = _safetensors_names(path)
        elif suffix in (".pth", ".pt"):
            names = _pickle_strings(path)
        else:
            return None
        return architecture_of(names)
    except (OSError, ValueError, EOFError, struct.error, zipfile.BadZipFile, KeyError, IndexError, UnicodeError):
        return None  # unreadable here: the caller's ordinary checks say what is wrong with it


def architecture_of(names: Iterable[str]) -> str | None:
    """The removal architecture whose signature names all occur among `names` (dotted keys are split)."""
    tokens: set[str] = set()
    for name in names:
        tokens.update(name.split("."))
    return next((arch for arch, signature in _SIGNATURES.items() if signature <= tokens), None)


def _safetensors_names(path: Path) -> list[str]:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > _MAX_HEADER:
            raise ValueError("header too large")
        header = json.loads(fh.read(length))
    return [str(key) for key in header if key != "__metadata__"] if isinstance(header, dict) else []


def _pickle_strings(path: Path) -> list[str]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            found = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not found or archive.getinfo(found[0]).file_size > _MAX_PICKLE:
                return []
            return list(_strings(io.BytesIO(archive.read(found[0])), 1))
    with path.open("rb") as fh:
        return list(_strings(fh, _LEGACY_PICKLES))


def _strings(stream: io.BufferedIOBase | io.BytesIO, pickles: int) -> Iterator[str]:
    """The text constants of the first `pickles` pickles in `stream` (opcodes are parsed, never executed)."""
    for index in range(pickles):
        try:
            found = [arg for _op, arg, _pos in pickletools.genops(stream) if isinstance(arg, str)]
        except ValueError:  # no further pickle (a plain pickle file), or the raw storages that follow them
            if index == 0:
                raise
            return
        yield from found
