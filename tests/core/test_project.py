"""Project files: exact round trips, atomic saves that survive being killed, and hostile files refused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history import History, capture
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import (
    FORMAT_VERSION,
    MIMETYPE,
    Project,
    ProjectError,
    load_project,
    read_manifest,
    save_project,
)


def make_project(width: int = 96, height: int = 64, seed: int = 0) -> Project:
    rng = np.random.default_rng(seed)
    base = Layer(name="Background", pixels=rng.integers(0, 256, (height, width, 4), dtype=np.uint8), kind="base")
    base.pixels[..., 3] = 255
    result = Layer(name="a cat", pixels=np.zeros((height, width, 4), np.uint8), kind="result", opacity=0.6)
    result.pixels[10:30, 20:50] = (200, 100, 50, 255)
    result.metadata = {"history_id": 2, "seed": 5}
    paint = Layer(name="Sketch", pixels=np.zeros((height, width, 4), np.uint8), visible=False)
    doc = Document(width, height, [base, result, paint])
    doc.mask[5:25, 5:40] = 255
    doc.set_active_layer(result.id)
    doc.metadata.update(path="/photos/cat.jpg", icc_profile=b"\x00ICC-bytes", exif=b"Exif\x00\x00MM")
    history = History()
    history.add("open", "Opened cat.jpg", snapshot=capture(doc))
    job = InpaintJob(model="classic", prompt="a cat", seed=5).to_dict()
    history.add("generate", "a cat", params={"job": job, "device": "cpu"}, duration_s=1.5, snapshot=capture(doc))
    generate = InpaintJob(prompt="next idea", seed=9).to_dict()
    return Project(document=doc, history=history, generate=generate, extra={"zoom": 0.5})


def assert_same_document(a: Document, b: Document) -> None:
    assert (a.width, a.height, a.active_layer_id) == (b.width, b.height, b.active_layer_id)
    assert np.array_equal(a.mask, b.mask)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert (la.id, la.name, la.kind, la.visible, la.opacity, la.metadata) == (
            lb.id,
            lb.name,
            lb.kind,
            lb.visible,
            lb.opacity,
            lb.metadata,
        )
        assert np.array_equal(la.pixels, lb.pixels)


def test_round_trip_is_exact(tmp_path):
    project = make_project()
    path = save_project(project, tmp_path / "cat.inpaint")
    loaded = load_project(path)
    assert_same_document(project.document, loaded.document)
    assert loaded.document.metadata["icc_profile"] == b"\x00ICC-bytes"
    assert loaded.document.metadata["exif"] == b"Exif\x00\x00MM"
    assert loaded.document.metadata["path"] == "/photos/cat.jpg"
    assert loaded.generate == project.generate and loaded.extra == {"zoom": 0.5}
    assert InpaintJob.from_dict(loaded.generate) == InpaintJob(prompt="next idea", seed=9)
    assert [e.params for e in loaded.history] == [e.params for e in project.history]
    assert loaded.history.head_id == project.history.head_id
    for old, new in zip(project.history, loaded.history):
        assert (old.kind, old.title, old.time, old.duration_s, old.parent_id) == (
            new.kind,
            new.title,
            new.time,
            new.duration_s,
            new.parent_id,
        )
        assert np.array_equal(old.snapshot.composite(), new.snapshot.composite())
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype").decode() == MIMETYPE


def test_saving_again_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    project = make_project()
    path = save_project(project, tmp_path / "p.inpaint")
    project.document.layers[0].name = "Renamed"
    save_project(project, path)
    assert load_project(path).document.layers[0].name == "Renamed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.inpaint"]


def test_wrong_suffix_and_missing_folder(tmp_path):
    with pytest.raises(BadInputError, match="must end in .inpaint"):
        save_project(make_project(), tmp_path / "p.zip")
    with pytest.raises(BadInputError, match="does not exist"):
        save_project(make_project(), tmp_path / "nope" / "p.inpaint")


SAVE_LOOP = r"""
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.core.test_project import make_project
from inpaint_studio.core.project import save_project
target = Path(sys.argv[1])
i = 0
while True:
    i += 1
    project = make_project(width=400, height=300, seed=i)
    save_project(project, target)
    print(i, flush=True)
"""


def test_killing_a_save_at_random_moments_never_breaks_the_previous_file(tmp_path):
    target = tmp_path / "work.inpaint"
    save_project(make_project(width=400, height=300, seed=0), target)
    script = tmp_path / "save_loop.py"
    script.write_text(SAVE_LOOP.format(root=str(Path(__file__).resolve().parents[2])))
    rng = random.Random(1234)
    trials = 12
    for _ in range(trials):
        proc = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one complete save happened; the next one is in flight
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = load_project(target)  # always a complete, valid project
        assert loaded.document.size == (400, 300) and len(loaded.document.layers) == 3
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= trials  # killed writers may leave their temp file; never the target broken


# ---- hostile and damaged files ------------------------------------------------------------------------


def rewrite(path: Path, out: Path, edit) -> Path:
    """Copy a valid project into `out`, letting `edit(name, data)` change/drop/add entries."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        items = [(info, src.read(info)) for info in src.infolist()]
        for info, data in edit(items):
            dst.writestr(info, data)
    return out


@pytest.fixture
def valid(tmp_path) -> Path:
    return save_project(make_project(), tmp_path / "valid.inpaint")


def _with_manifest(items, change):
    for info, data in items:
        if info.filename == "manifest.json":
            manifest = json.loads(data)
            change(manifest)
            data = json.dumps(manifest).encode()
        yield info, data


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the hostile zip is built on purpose
@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("traversal", lambda items: [*items, (zipfile.ZipInfo("../evil.png"), b"x")], "points outside the project"),
        ("absolute", lambda items: [*items, (zipfile.ZipInfo("/etc/evil"), b"x")], "points outside the project"),
        ("duplicate", lambda items: [*items, (zipfile.ZipInfo("mask.png"), b"x")], "appears twice"),
        (
            "missing entry",
            lambda items: [(i, d) for i, d in items if i.filename != "mask.png"],
            "does not contain",
        ),
        (
            "newer version",
            lambda items: _with_manifest(items, lambda m: m.update(version=FORMAT_VERSION + 1)),
            "newer Inpaint Studio",
        ),
        (
            "foreign manifest",
            lambda items: _with_manifest(items, lambda m: m.update(format="something-else")),
            "not an Inpaint Studio project",
        ),
        (
            "bad json",
            lambda items: [(i, b"{not json" if i.filename == "manifest.json" else d) for i, d in items],
            "not valid JSON",
        ),
        (
            "wrong layer size",
            lambda items: _with_manifest(items, lambda m: m["document"].update(width=95)),
            "expected 95x64",
        ),
        (
            "unknown kind",
            lambda items: _with_manifest(items, lambda m: m["document"]["layers"][0].update(kind="python")),
            "unknown kind",
        ),
    ],
)
def test_hostile_or_damaged_projects_are_refused_with_one_sentence(valid, tmp_path, name, edit, message):
    bad = rewrite(valid, tmp_path / "bad.inpaint", edit)
    with pytest.raises(ProjectError, match=message) as info:
        load_project(bad)
    assert "bad.inpaint" in str(info.value)
    assert str(info.value).count(".") >= 1 and "\n" not in str(info.value)


def test_symlink_entries_are_refused(valid, tmp_path):
    def add_link(items):
        link = zipfile.ZipInfo("layers/link.png")
        link.external_attr = 0o120777 << 16  # S_IFLNK
        return [*items, (link, b"/etc/passwd")]

    with pytest.raises(ProjectError, match="symbolic link"):
        load_project(rewrite(valid, tmp_path / "link.inpaint", add_link))


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    bomb = tmp_path / "bomb.inpaint"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", MIMETYPE)
        archive.writestr("manifest.json", json.dumps({"format": "inpaint-studio-project", "version": 1}))
        archive.writestr("layers/big.png", b"\0" * (50 * 2**20))
    with pytest.raises(ProjectError, match="compressed"):
        load_project(bomb)


def test_not_a_zip_missing_and_folder(tmp_path):
    junk = tmp_path / "junk.inpaint"
    junk.write_bytes(b"hello")
    with pytest.raises(ProjectError, match="not a valid project or is damaged"):
        load_project(junk)
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "missing.inpaint")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)


def test_truncated_file_is_refused(valid, tmp_path):
    data = valid.read_bytes()
    cut = tmp_path / "cut.inpaint"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError):
        load_project(cut)


def test_read_manifest_only(valid):
    manifest = read_manifest(valid)
    assert manifest["version"] == FORMAT_VERSION and manifest["document"]["width"] == 96
    assert os.path.basename(manifest["document"]["layers"][0]["file"]).endswith(".png")
