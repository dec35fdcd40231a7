"""Bounded fuzzing (hypothesis) of everything that reads a file: images, masks, projects, recipes, OpenRaster.

Valid files (from the corpus, a saved project, a recipe) are mutated: bit flips, truncation, inserted
bytes, PNG chunks with correct checksums and rewritten headers (so decoders get past the CRC into the
data), JSON values replaced or removed, zip entries dropped, renamed or corrupted. The only outcomes
allowed are success (a result the app can use: a project is exercised the way the window uses one, then
saved and opened again) or an InpaintStudioError whose message is one sentence naming the file. Anything
else, a hang (per-example deadline plus a thread guard) or a stray output file fails.

CI runs FUZZ_EXAMPLES examples per target (derandomised, so a run is reproducible); set
INPAINT_FUZZ_EXAMPLES=5000 to fuzz longer locally with fresh random inputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaint_studio import cli
from inpaint_studio.cli.chain import read_recipe
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.imageio import load_image, load_mask
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.ora import export_ora, import_ora
from inpaint_studio.core.project import load_project, read_manifest, save_project
from inpaint_studio.engine.chain import Chain
from tests.hardening.corpus import IMAGE_CASES, MASK_CASES, encode, make_project, photo, png_chunk, soft_mask
from tests.hardening.guards import assert_one_sentence, within

_LONG_RUN = "INPAINT_FUZZ_EXAMPLES" in os.environ
FUZZ_EXAMPLES = int(os.environ.get("INPAINT_FUZZ_EXAMPLES", "300"))
EXAMPLE_LIMIT_S = 30.0  # the thread guard: far above any single decode here, far below "hung"

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=timedelta(seconds=5),  # per example; generous for a shared 2-core machine
    derandomize=not _LONG_RUN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Counts for docs/reliability.md (printed at the end of the module with -s).
COUNTS: dict[str, dict[str, int]] = {}


def tally(target: str, outcome: str) -> None:
    COUNTS.setdefault(target, {}).setdefault(outcome, 0)
    COUNTS[target][outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    for target, outcomes in sorted(COUNTS.items()):
        print(f"\nfuzz {target}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One folder for the module (hypothesis examples cannot use function-scoped tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="inpaint-fuzz-") as folder:
        yield Path(folder)


# ---- byte mutations ------------------------------------------------------------------------------------------

_CHUNK_TYPES = [
    b"tEXt",
    b"zTXt",
    b"iTXt",
    b"iCCP",
    b"eXIf",
    b"PLTE",
    b"tRNS",
    b"acTL",
    b"fcTL",
    b"fdAT",
    b"IHDR",
    b"IDAT",
    b"gAMA",
    b"sBIT",
    b"pHYs",
    b"bKGD",
    b"cHRM",
]


@st.composite
def mutation(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "chunk", "header", "duplicate"]))
    where = draw(st.floats(0, 1))
    payload = draw(st.binary(min_size=1, max_size=64))

    def apply(data: bytes) -> bytes:
        out = bytearray(data)
        at = min(len(out), int(where * len(out)))
        if kind == "flip" and out:
            at = min(at, len(out) - 1)
            out[at] ^= 1 << (payload[0] % 8)
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = payload
        elif kind == "overwrite":
            out[at : at + len(payload)] = payload
        elif kind == "duplicate":
            out[at:at] = out[at : at + 1 + payload[0] * 4]
        elif kind == "chunk" and out.startswith(b"\x89PNG"):
            # A chunk with a correct CRC right after IHDR: the decoder has to parse its content.
            chunk_type = _CHUNK_TYPES[payload[0] % len(_CHUNK_TYPES)]
            out[33:33] = png_chunk(chunk_type, bytes(payload[1:]))
        elif kind == "header" and out.startswith(b"\x89PNG") and len(out) >= 33:
            # Rewrite IHDR (size, depth, colour type) and fix its CRC: a "valid" header for other data.
            fields = (payload + bytes(16))[:13]
            out[16:29] = fields
            out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])) & 0xFFFFFFFF)
        return bytes(out)

    return apply


def mutated(seeds: dict[str, bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, bytes]:
        name = draw(st.sampled_from(sorted(seeds)))
        data = seeds[name]
        for change in draw(st.lists(mutation(), min_size=1, max_size=4)):
            data = change(data)
        return name, data

    return build()


def _image_seeds() -> dict[str, bytes]:
    """Small valid files of the corpus (every format and mode it has), keyed by file name."""
    seeds = {}
    for case in IMAGE_CASES:
        if case.opens and case.data is not None and case.size and case.size[0] * case.size[1] <= 5000:
            seeds[f"{case.name}{Path(case.filename).suffix}"] = case.data()
    return seeds


def _mask_seeds() -> dict[str, bytes]:
    return {f"{c.name}{Path(c.filename).suffix}": c.data() for c in MASK_CASES if not c.error}


IMAGE_SEEDS = _image_seeds()
MASK_SEEDS = _mask_seeds()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ---- images and masks ------------------------------------------------------------------------------------------


@FUZZ
@given(sample=mutated(IMAGE_SEEDS))
def test_fuzz_image_loading(sample: tuple[str, bytes], scratch: Path) -> None:
    path = write(scratch, f"fuzzed-{sample[0]}", sample[1])
    for loader, target in ((load_image, "image"), (load_mask, "image as mask")):
        try:
            result = within(EXAMPLE_LIMIT_S, loader, path)
        except InpaintStudioError as error:
            assert_one_sentence(str(error), path)
            tally(target, "refused")
            continue
        image = result.image if loader is load_image else result
        assert image.mode in (("RGB", "RGBA") if loader is load_image else ("L",))
        assert image.width > 0 and image.height > 0
        np.asarray(image).sum()  # the pixels are really there (no lazy, half-read image)
        tally(target, "opened")


@FUZZ
@given(sample=mutated(MASK_SEEDS))
def test_fuzz_mask_loading(sample: tuple[str, bytes], scratch: Path) -> None:
    path = write(scratch, f"fuzzed-mask-{sample[0]}", sample[1])
    try:
        mask = within(EXAMPLE_LIMIT_S, load_mask, path, (48, 32))
    except InpaintStudioError as error:
        assert_one_sentence(str(error), path)
        tally("mask", "refused")
        return
    assert mask.mode == "L" and mask.size == (48, 32)
    tally("mask", "opened")


CLI_EXAMPLES = max(10, FUZZ_EXAMPLES // 4)  # each one runs the whole command (a classical fill)


@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(sample=mutated({"photo.png": encode(Image.fromarray(photo()), "PNG"), "photo.jpg": IMAGE_SEEDS["jpeg.jpg"]}))
def test_fuzz_cli_never_leaves_a_partial_output(sample: tuple[str, bytes], scratch: Path) -> None:
    """Exit 0 with a whole, readable output of the input's size, or exit 2 with one line and no file."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    image = write(folder, sample[0], sample[1])
    mask = folder / "mask.png"
    Image.fromarray(soft_mask()).save(mask)
    out_dir = folder / "out"
    out_dir.mkdir()
    out = out_dir / "result.png"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), "-q"])
    err = stderr.getvalue()
    if code == 0:
        assert sorted(p.name for p in out_dir.iterdir()) == ["result.png"]
        assert load_image(out).image.size == load_image(image).image.size
        tally("cli", "exit 0")
    else:
        assert code == 2, err
        assert err.startswith("inpaint-studio: ") and err.count("\n") == 1, err
        assert list(out_dir.iterdir()) == [], "a failed run left a file"
        tally("cli", "exit 2")


# ---- projects ---------------------------------------------------------------------------------------------------


def _project_entries() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = save_project(make_project(), Path(folder) / "seed.inpaint")
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}


PROJECT_ENTRIES = _project_entries()
MANIFEST = json.loads(PROJECT_ENTRIES["manifest.json"])
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["../evil", "/etc/passwd", "mask.png", "layers/x.png", "generate", "base", "uint8"]),
    st.builds(list),  # fresh objects: a shared [] placed twice could end up inside itself
    st.builds(dict),
    st.lists(st.integers(-3, 300), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


MANIFEST_PATHS = [p for p in _paths(MANIFEST) if p]


@st.composite
def json_mutation(draw: st.DrawFn, document: Any, paths: list[tuple[Any, ...]]) -> Any:
    """The document with 1-4 values replaced by other JSON values, or removed."""
    out = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        parent = out
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the way there
    return out


@st.composite
def project_file(draw: st.DrawFn) -> bytes:
    """A project zip: its manifest mutated, an entry corrupted or dropped or added, or its bytes mutated."""
    entries = dict(PROJECT_ENTRIES)
    how = draw(st.sampled_from(["manifest", "entry", "bytes", "evil-name"]))
    if how == "manifest":
        entries["manifest.json"] = json.dumps(draw(json_mutation(MANIFEST, MANIFEST_PATHS))).encode()
    elif how == "entry":
        name = draw(st.sampled_from(sorted(entries)))
        if draw(st.booleans()):
            del entries[name]
        else:
            for change in draw(st.lists(mutation(), min_size=1, max_size=3)):
                entries[name] = change(entries[name])
    elif how == "evil-name":
        entries[draw(st.sampled_from(["../escape.png", "/abs.png", "a\\b.png", "c:drive.png"]))] = b"x"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    if how == "bytes":
        for change in draw(st.lists(mutation(), min_size=1, max_size=3)):
            data = change(data)
    return data


def exercise(project: Any) -> None:
    """Use an opened project the way the window does; nothing but an InpaintStudioError may come out."""
    from inpaint_studio.core.record import record_of
    from inpaint_studio.ui.panels.history_panel import entry_label, generation_fields

    document = project.document
    assert document.composite().shape == (document.height, document.width, 4)
    with contextlib.suppress(InpaintStudioError):
        InpaintJob.from_dict(project.generate).problems()  # the Generate panel restores it
    history = project.history
    if history is None:
        return
    lanes, statuses = history.lanes(), history.statuses()
    history.memory_bytes()
    for entry in history:
        entry_label(entry, lanes, statuses[entry.id])
        record = record_of(entry)  # None when the record is unreadable: the panel then shows no details
        if record is not None:
            generation_fields(record)
        if entry.snapshot is not None:
            entry.snapshot.composite()
            entry.snapshot.to_document()
        entry.render_thumbnail()
        for tiled in entry.inputs.values():
            tiled.to_array()
        if "job" in entry.params:
            from inpaint_studio.engine.replay import recorded_job

            with contextlib.suppress(InpaintStudioError):
                recorded_job(entry).problems()
    if history.head_id is not None:
        history.ancestors(history.head_id)


@FUZZ
@given(data=project_file())
def test_fuzz_project_loading(data: bytes, scratch: Path) -> None:
    path = write(scratch, "fuzzed.inpaint", data)
    try:
        project = within(EXAMPLE_LIMIT_S, load_project, path)
    except InpaintStudioError as error:
        assert_one_sentence(str(error), path)
        tally("project", "refused")
        return
    exercise(project)
    try:
        within(EXAMPLE_LIMIT_S, read_manifest, path)
    except InpaintStudioError as error:  # the manifest alone may be refused where pixels were fine: never
        pytest.fail(f"the project opened but its manifest is refused: {error}")
    # What opens can be saved and opened again, unchanged in size.
    again = save_project(project, scratch / "resaved.inpaint")
    reopened = load_project(again)
    assert reopened.document.size == project.document.size
    assert len(reopened.document.layers) == len(project.document.layers)
    tally("project", "opened with notes" if project.notes else "opened")


def _ora_entries() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = export_ora(make_project().document, Path(folder) / "seed.ora")
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}


ORA_ENTRIES = _ora_entries()


@st.composite
def ora_file(draw: st.DrawFn) -> bytes:
    entries = dict(ORA_ENTRIES)
    name = draw(st.sampled_from(sorted(entries)))
    if draw(st.integers(0, 5)) == 0:
        del entries[name]
    else:
        for change in draw(st.lists(mutation(), min_size=1, max_size=3)):
            entries[name] = change(entries[name])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return buffer.getvalue()


@FUZZ
@given(data=ora_file())
def test_fuzz_openraster_import(data: bytes, scratch: Path) -> None:
    path = write(scratch, "fuzzed.ora", data)
    try:
        imported = within(EXAMPLE_LIMIT_S, import_ora, path)
    except InpaintStudioError as error:
        assert_one_sentence(str(error), path)
        tally("openraster", "refused")
        return
    document = imported.document
    assert document.composite().shape == (document.height, document.width, 4)
    tally("openraster", "opened")


# ---- recipes ----------------------------------------------------------------------------------------------------

RECIPE = {
    "format": "inpaint-studio/chain",
    "version": 1,
    "inputs": {"image": "photo.jpg", "mask": "mask.png", "sky": "sky.png"},
    "defaults": {"steps": 30, "scheduler": "DPM++ 2M Karras", "mask": {"feather_px": 4}},
    "steps": [
        {"name": "fill", "job": {"model": "owner/inpaint", "prompt": "a door"}},
        {
            "name": "sky",
            "mask": "sky",
            "job": {"prompt": "sky", "strength": 0.9, "seed": 7, "speed": {"attention": "sdpa"}},
        },
        {"name": "style", "job": {"task": "img2img", "model": "owner/style", "prompt": "style", "strength": 0.5}},
    ],
}
RECIPE_PATHS = [p for p in _paths(RECIPE) if p]


@st.composite
def recipe_text(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return json.dumps(draw(json_mutation(RECIPE, RECIPE_PATHS))).encode()
    data = json.dumps(RECIPE).encode()
    for change in draw(st.lists(mutation(), min_size=1, max_size=3)):
        data = change(data)
    return data


@FUZZ
@given(data=recipe_text())
def test_fuzz_recipe_parsing(data: bytes, scratch: Path) -> None:
    """What `inpaint-studio chain` does before anything runs: read, parse, check; the result round-trips."""
    path = write(scratch, "fuzzed-recipe.json", data)
    try:
        chain = Chain.from_dict(within(EXAMPLE_LIMIT_S, read_recipe, path))
        problems = chain.problems({"image", "mask", "sky"})
    except InpaintStudioError as error:
        assert_one_sentence(str(error))
        tally("recipe", "refused")
        return
    assert all(isinstance(problem, str) and problem.endswith(".") for problem in problems)
    assert Chain.from_dict(chain.to_dict()) == chain
    tally("recipe", "valid" if not problems else "parsed, with problems")
