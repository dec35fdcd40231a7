"""The A1111 "parameters" text: the generation settings that many tools store inside an image.

The convention (Stable Diffusion web UI, also read by ComfyUI, InvokeAI, civitai and image viewers) is
three parts, one after the other:

    a cat on a bench                      <- the prompt, any number of lines
    Negative prompt: blurry               <- optional; this line and the ones after it, up to the last line
    Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234, Size: 512x512, ...   <- one line

The last line holds "Key: value" pairs separated by ", ". A value that contains a comma, colon, double
quote, line break or leading/trailing whitespace is written as a JSON string in double quotes (A1111's
`quote`), so it survives the split; the reader undoes it (A1111's `unquote`).

LoRAs are written the way A1111 writes them, as `<lora:name:weight>` tags at the end of the prompt (name: the
file's name without its extension, or the hub reference); `split_lora_tags` takes them out of a prompt again.
Fast mode, the IP-Adapter and embeddings are "Key: value" pairs of the settings line.

Round trip: `parse_parameters(format_parameters(job, ...))` gives back the prompt, the negative prompt and
every setting exactly (prompt lines are not stripped here, unlike A1111's reader). The one text that cannot
round-trip is a prompt with a line that itself begins with "Negative prompt:": no reader can tell it from
the real negative prompt (the same limit as A1111).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from inpaint_studio.core.jobspec import FAST_CHOICES, OFF, Area, InpaintJob

NEGATIVE_PREFIX = "Negative prompt:"

# A1111's `re_param`: a key (a word character, then word characters, spaces, '-' or '/'), a colon, and
# either a double-quoted JSON string or everything up to the next comma.
_SETTING = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# Keys we write must be read back whole: at least two characters and no trailing space.
_KEY = re.compile(r"\w[\w \-/]*[\w\-/]")
# A line is the settings line when it holds at least this many pairs (A1111's rule).
_MIN_SETTINGS = 3
_RESERVED_KEYS = frozenset({"prompt", "negative_prompt"})

_AREA_NAMES = {Area.MASKED: "Only masked", Area.WHOLE: "Whole picture"}
# A1111's extra-network tag: <lora:name:weight> (the weight may be left out: 1).
_LORA_TAG = re.compile(r"(?:^|(?<=\s))<lora:([^:<>]+)(?::([^:<>]*))?>[ ]?")


def format_parameters(
    job: InpaintJob,
    *,
    width: int,
    height: int,
    seed: int | None,
    model_name: str,
    extra: Mapping[str, str | int | float] | None = None,
    diffusion: bool = True,
) -> str:
    """Write `job` as an A1111 "parameters" text for the image it produced.

    The settings line holds, in this order: Steps, Sampler (the job's scheduler name as is), CFG scale,
    Seed (the `seed` argument: the job's seed may be None or differ per variant), Size (`width`x`height`),
    Model (`model_name`), Denoising strength, Mask blur (the mask feather in px), Inpaint area ("Only
    masked" or "Whole picture"), Masked area padding, then the `extra` pairs in their order (an extra key
    equal to a standard one replaces its value in place). The "Negative prompt:" line is left out when the
    negative prompt is empty; with both prompts empty the text is the settings line alone (as A1111 does).

    `diffusion=False` (the classical fill, a removal network) leaves out what such a fill does not use: the
    prompts, Steps, Sampler, CFG scale and Denoising strength; Seed is left out whenever `seed` is None.
    Without "Steps" the text is not offered as parameters to load when the image is opened again.

    Raises ValueError when an `extra` key could not be read back as one key (a programming error).
    """
    settings: dict[str, str | int | float] = {
        "Steps": job.steps,
        "Sampler": job.scheduler,
        "CFG scale": job.guidance_scale,
        "Seed": -1 if seed is None else seed,
        "Size": f"{width}x{height}",
        "Model": model_name,
        "Denoising strength": job.strength,
        "Mask blur": job.mask.feather_px,
        "Inpaint area": _AREA_NAMES[Area(job.area)],
        "Masked area padding": job.padding_px,
    }
    unused = () if diffusion else ("Steps", "Sampler", "CFG scale", "Denoising strength")
    for key in (*unused, *(("Seed",) if seed is None else ())):
        del settings[key]
    settings.update(_addon_settings(job))
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key in _RESERVED_KEYS:
            raise ValueError(
                f"Parameter key {key!r} cannot be stored; use letters, digits, spaces, '-' or '/' only, "
                "at least two characters, not starting or ending with a space."
            )
        settings[key] = value
    line = ", ".join(f"{key}: {_quote(_to_text(value))}" for key, value in settings.items())

    if not diffusion:
        return line
    head = job.prompt
    tags = " ".join(f"<lora:{addon_name(reference)}:{_to_text(weight)}>" for reference, weight in job.loras)
    if tags:
        head = f"{head} {tags}" if head else tags
    if job.negative_prompt:
        negative_line = f"{NEGATIVE_PREFIX} {job.negative_prompt}"
        head = f"{head}\n{negative_line}" if head else negative_line
    return f"{head}\n{line}" if head else line


def addon_name(reference: str) -> str:
    """A LoRA / embedding / upscaler as A1111 names it: a weights file's name without its extension (a local file,
    or a file in a hub repository); a hub repository id as it is."""
    text = reference.strip().replace("\\", "/").rstrip("/")
    name = text.rsplit("/", 1)[-1]
    if name.lower().endswith(WEIGHT_SUFFIXES):
        return name.rsplit(".", 1)[0]
    return text if "/" in text and not _looks_like_path(reference.strip()) else name


WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or "\\" in text or (len(text) > 1 and text[1] == ":")


def split_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its `<lora:name:weight>` tags, and the tags' (name, weight) in order (weight 1 when
    absent or unreadable, as A1111 reads it)."""
    found: list[tuple[str, float]] = []

    def take(match: re.Match[str]) -> str:
        weight = _as_float(match.group(2)) if match.group(2) is not None else 1.0
        found.append((match.group(1), 1.0 if weight is None else weight))
        return ""

    cleaned = _LORA_TAG.sub(take, prompt)
    if found and cleaned.endswith(" ") and not prompt.endswith(" "):
        cleaned = cleaned[:-1]
    return cleaned, found


def _addon_settings(job: InpaintJob) -> dict[str, str | int | float]:
    out: dict[str, str | int | float] = {}
    if job.fast != OFF:
        out["Fast"] = job.fast
    if job.ip_adapter:
        out["IP-Adapter"] = job.ip_adapter
        out["IP-Adapter scale"] = job.ip_adapter_scale
        if job.ip_adapter_masked:
            out["IP-Adapter masked"] = "True"
    if job.embeddings:
        out["Embeddings"] = ", ".join(f"{token or addon_name(ref)}={addon_name(ref)}" for ref, token in job.embeddings)
    return out


def parse_parameters(text: str) -> dict[str, str]:
    """Read an A1111 "parameters" text into {"prompt", "negative_prompt", and every "Key: value" pair}.

    Rules: blank lines at the very end are ignored; when the last line ends in "\\r" the whole text is
    taken as CRLF and one "\\r" is removed from each line. The last line is the settings line when it
    holds at least three "Key: value" pairs (A1111's rule); otherwise the whole text is prompt. The first
    line that begins with "Negative prompt:" starts the negative prompt (one space after the colon is
    dropped) and everything before it is the prompt, kept verbatim. Quoted values are unquoted; keys are
    kept as written (so "Size" stays "512x512"); a later duplicate key wins. "prompt" and
    "negative_prompt" are always present (empty when missing).
    """
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and lines[-1].endswith("\r"):
        lines = [line.removesuffix("\r") for line in lines]

    result: dict[str, str] = {}
    if lines and is_settings_line(lines[-1]):
        result.update(_parse_settings(lines.pop()))

    start = next((i for i, line in enumerate(lines) if line.startswith(NEGATIVE_PREFIX)), None)
    if start is None:
        prompt, negative = "\n".join(lines), ""
    else:
        first = lines[start][len(NEGATIVE_PREFIX) :]
        first = first.removeprefix(" ")
        prompt, negative = "\n".join(lines[:start]), "\n".join([first, *lines[start + 1 :]])
    result["prompt"] = prompt
    result["negative_prompt"] = negative
    return result


def is_settings_line(line: str) -> bool:
    """True when `line` holds at least three "Key: value" pairs (A1111's test for the settings line)."""
    return len(_SETTING.findall(line)) >= _MIN_SETTINGS


def looks_like_parameters(text: str) -> bool:
    """True when `text` ends in a settings line with a "Steps" key.

    Used to tell A1111-style text from whatever else a camera or editor wrote into a free-text field
    (EXIF UserComment, JPEG comment, TIFF ImageDescription).
    """
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and is_settings_line(lines[-1]) and "Steps" in _parse_settings(lines[-1])


def job_overrides_from_parameters(parsed: Mapping[str, str]) -> dict[str, Any]:
    """Map parsed parameters onto `InpaintJob` field names, with the field's type, for `job.replace(**...)`.

    Known keys: prompt, negative_prompt -> prompt, negative_prompt (verbatim); "Steps" -> steps (int);
    "CFG scale" -> guidance_scale (float); "Seed" -> seed (int); "Denoising strength" -> strength
    (float); "Sampler" -> scheduler (the name as is); "Masked area padding" -> padding_px (int);
    "Inpaint area" -> area ("Only masked" / "Whole picture"). Unknown keys are skipped, and so is a value
    that is malformed (not a number, not finite, a fraction where a whole number is needed, blank) or that
    the job would reject (e.g. "Seed: -1", A1111's "random"): an imported image must never make the
    current settings invalid.
    """
    out: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt"):
        value = parsed.get(name)
        if isinstance(value, str):
            out[name] = value
    if "prompt" in out:
        out["prompt"], tags = split_lora_tags(out["prompt"])
        if tags:
            out["loras"] = tuple(tags)  # names, not files: the caller finds the files (the studio's LoRA list)
    fast = parsed.get("Fast", "").strip()
    if fast in FAST_CHOICES:
        out["fast"] = fast
    adapter = parsed.get("IP-Adapter", "").strip()
    if adapter:
        out["ip_adapter"] = adapter
        scale = _as_float(parsed.get("IP-Adapter scale"))
        if scale is not None and not InpaintJob(ip_adapter_scale=scale).problems():
            out["ip_adapter_scale"] = scale
        out["ip_adapter_masked"] = parsed.get("IP-Adapter masked", "").strip() == "True"
    embeddings = _embeddings(parsed.get("Embeddings", ""))
    if embeddings:
        out["embeddings"] = embeddings  # names, like the LoRAs

    candidates: dict[str, Any] = {
        "steps": _as_int(parsed.get("Steps")),
        "guidance_scale": _as_float(parsed.get("CFG scale")),
        "seed": _as_int(parsed.get("Seed")),
        "strength": _as_float(parsed.get("Denoising strength")),
        "padding_px": _as_int(parsed.get("Masked area padding")),
        "area": _as_area(parsed.get("Inpaint area")),
    }
    sampler = parsed.get("Sampler")
    if isinstance(sampler, str) and sampler.strip():
        out["scheduler"] = sampler
    for name, value in candidates.items():
        # The job's own validation is the single source of the allowed ranges; the default job is valid,
        # so any problem comes from this one value.
        if value is not None and not InpaintJob(**{name: value}).problems():
            out[name] = value
    return out


# ---- helpers ---------------------------------------------------------------------------------------------
def _to_text(value: str | int | float) -> str:
    if isinstance(value, str | bool):
        return str(value)
    if isinstance(value, numbers.Integral):  # also numpy integers
        return str(int(value))
    return repr(float(value))  # repr is the shortest text that reads back as the same float


def _quote(value: str) -> str:
    """A1111's `quote`, widened to every text the plain form would lose (quotes, edge whitespace, CR)."""
    if value and (any(c in value for c in ',:"\n\r') or value != value.strip()):
        return json.dumps(value, ensure_ascii=False)
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            loaded = json.loads(value)
        except ValueError:
            return value
        if isinstance(loaded, str):
            return loaded
    return value


def _parse_settings(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, raw in _SETTING.findall(line):
        # An unquoted value never has meaningful edge whitespace (we quote such values).
        out[key.strip()] = _unquote(raw) if raw.startswith('"') else raw.strip()
    return out


def _as_int(text: str | None) -> int | None:
    if not isinstance(text, str):
        return None
    number = _as_float(text)
    if number is None or not number.is_integer():
        return None
    try:
        return int(text.strip())  # exact for big whole numbers, where float would round
    except ValueError:
        return int(number)  # "30.0"


def _as_float(text: str | None) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _embeddings(text: str) -> tuple[tuple[str, str], ...]:
    """ "token=name, token=name" -> ((name, token), ...): the token the prompt uses, and the file's name."""
    out = []
    for part in text.split(","):
        token, sep, name = part.strip().partition("=")
        if sep and token and name:
            out.append((name, "" if token == name else token))
    return tuple(out)


def _as_area(text: str | None) -> Area | None:
    if not isinstance(text, str):
        return None
    wanted = text.strip().casefold()
    return next((area for area, name in _AREA_NAMES.items() if name.casefold() == wanted), None)
