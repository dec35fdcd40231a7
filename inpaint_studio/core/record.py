"""One generation as recorded: everything that made one result image, enough to re-create it exactly.

The studio writes one record per applied result (its history entry's parameters), the chain runner one per
step (record.json); replay, the History panel and the `replay --list` command read them. Each fact is
stored once: the seed lives in the variant's own job (`job.seed`, with `variants=1`), the batch it came from
is `variant` of `batch_size`.

Plain data on disk (`to_dict`, with `"record": 2`). `from_dict` also reads what earlier versions wrote (the
batch's job with the first seed, the variant's seed beside it as "seed", and a "model_name"), and checks
every value's type: records come from files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inpaint_studio.core.document import Document
from inpaint_studio.core.errors import BadInputError, InpaintStudioError
from inpaint_studio.core.history.entries import GENERATION_KINDS, HistoryEntry
from inpaint_studio.core.history.graph import History
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.parameters import format_parameters

VERSION = 2
Region = tuple[int, int, int, int]
FILL_FAMILIES = ("classic", "removal")  # model families that fill without diffusion (no prompt, no steps)


@dataclass(frozen=True)
class GenerationRecord:
    """See the module docstring."""

    job: InpaintJob  # this result's own resolved job: its seed, variants=1
    model: Mapping[str, Any] = field(default_factory=dict)  # what the reference resolved to (ModelInfo.to_dict)
    device: str = ""  # e.g. "cpu", "cuda:0", or a server's device
    device_name: str = ""  # e.g. "NVIDIA GeForce RTX 4090", "CPU (2 threads of 2)"
    variant: int = 0  # index in the batch it was made in
    batch_size: int = 1  # variants the submitted job asked for
    region: Region | None = None  # (left, top, right, bottom) the model worked on
    duration_s: float = 0.0  # the whole job that made it (every variant)
    extra: Mapping[str, Any] = field(default_factory=dict)  # engine facts: working size, pipeline, ... (plain data)
    rerun_of: int | None = None  # the history entry this result re-ran, if any

    @property
    def seed(self) -> int:
        if self.job.seed is None:
            raise ValueError("a record's job always has its concrete seed")
        return self.job.seed

    @property
    def submitted_job(self) -> InpaintJob:
        """The job as Generate would submit it again: this result's seed, the batch's variant count."""
        return self.job.replace(variants=self.batch_size)

    @property
    def ran_diffusion(self) -> bool:
        """False for the classical fill and removal networks, which use no prompt, steps or sampler."""
        family = self.model.get("family")
        if family is None:
            return not self.job.is_classical
        return family not in FILL_FAMILIES

    @property
    def seed_used(self) -> int | None:
        """The seed when it chose the result (diffusion, MAT); None when the model has no use for one."""
        if self.ran_diffusion or self.extra.get("seeded") is True:
            return self.seed
        return None

    @property
    def model_name(self) -> str:
        """How a person names the model: 'Classical fill', a hub id, or a file/folder name."""
        model = self.model
        if model.get("source") == "classic" or (not model and self.job.is_classical):
            return "Classical fill"
        if model.get("source") == "hub":
            return str(model.get("reference"))
        path = str(model.get("path") or model.get("reference") or self.job.model)
        return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]

    def parameters(
        self, width: int, height: int, model_name: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> str:
        """The A1111 "parameters" text of this result (without prompt, steps, sampler or seed for a fill that
        had no use for them): what every writer of an image (CLI, export, batch) stores."""
        return format_parameters(
            self.job,
            width=width,
            height=height,
            seed=self.seed_used,
            model_name=model_name or str(self.model.get("reference") or self.job.model),
            extra=extra,
            diffusion=self.ran_diffusion,
        )

    # ---- plain data ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "record": VERSION,
            "job": self.job.to_dict(),
            "model": dict(self.model),
            "device": self.device,
            "device_name": self.device_name,
            "variant": self.variant,
            "batch_size": self.batch_size,
            "region": list(self.region) if self.region is not None else None,
            "duration_s": round(self.duration_s, 3),
            "extra": plain_data(self.extra),
            "rerun_of": self.rerun_of,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRecord:
        """Read a record (this version's or an older one); BadInputError says what is wrong with it.

        Keys that are not the record's (a history entry keeps its own measurements beside it) are ignored.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("job"), Mapping):
            raise BadInputError("This entry has no recorded job, so it cannot be re-created.")
        job = InpaintJob.from_dict(data["job"])
        version = data.get("record", 1)
        variant = _int(data, "variant", 0)
        if version == 1:  # the batch's job (first seed), and this variant's seed beside it
            seed = data.get("seed", job.seed)
            batch_size = job.variants
            job = InpaintJob.from_dict({**job.to_dict(), "seed": seed, "variants": 1})
        elif version == VERSION:
            batch_size = _int(data, "batch_size", 1)
        else:
            raise BadInputError(f"This record is version {version!r}; this app reads versions 1 and {VERSION}.")
        if job.seed is None:
            raise BadInputError("This record has no seed, so its result cannot be re-created.")
        if not 0 <= variant < max(1, batch_size):
            raise BadInputError(f"This record is variant {variant + 1} of a batch of {batch_size}; fix the file.")
        rerun_of = data.get("rerun_of")
        return cls(
            job=job,
            model=_mapping(data, "model"),
            device=_text(data, "device"),
            device_name=_text(data, "device_name"),
            variant=variant,
            batch_size=max(1, batch_size),
            region=_region(data.get("region")),
            duration_s=_number(data, "duration_s"),
            extra=_mapping(data, "extra"),
            rerun_of=rerun_of if isinstance(rerun_of, int) and not isinstance(rerun_of, bool) else None,
        )


def plain_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able part of an engine's facts: text, numbers, yes/no, lists and nested tables of those."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str | int | float | bool | list) or value is None:
            out[str(key)] = value
        elif isinstance(value, Mapping):
            out[str(key)] = plain_data(value)
    return out


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInputError(f"The record's '{key}' is {value!r:.40}; it must be a whole number.")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key, 0.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else ""


def _mapping(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _region(value: Any) -> Region | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        left, top, right, bottom = value
        return left, top, right, bottom
    return None


def record_of(entry: HistoryEntry) -> GenerationRecord | None:
    """The record a generation or classical-fill entry keeps; None for other entries or unreadable data
    (a damaged record in a project file shows no details instead of failing)."""
    if entry.kind not in GENERATION_KINDS:
        return None
    try:
        return GenerationRecord.from_dict(entry.params)
    except InpaintStudioError:
        return None


def shown_record(document: Document, history: History) -> GenerationRecord | None:
    """The record of the generation an export of `document` shows: the topmost visible result layer's.

    Why that one when several results are stacked: the A1111 "parameters" text describes one generation,
    and the one a viewer sees is on top (it covers the results below where they overlap, and it is usually
    the last step of the chain). A result the user hid or faded out is not what the picture shows, and the
    history's latest entry may be exactly such a rejected result, so the layers decide, not the history.
    """
    for layer in reversed(document.layers):
        history_id = layer.metadata.get("history_id")
        if layer.kind != "result" or not layer.visible or layer.opacity <= 0 or not isinstance(history_id, int):
            continue
        entry = history.entries.get(history_id)
        record = record_of(entry) if entry is not None else None
        if record is not None:
            return record
    return None


def shown_parameters(document: Document, history: History) -> str | None:
    """The A1111 "parameters" text of what an export of `document` shows (see `shown_record`); None when
    no generation is visible."""
    record = shown_record(document, history)
    if record is None:
        return None
    return record.parameters(document.width, document.height)
