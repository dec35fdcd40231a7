"""Replaying a saved project's chain headless reproduces identical pixels; a new seed makes a new branch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history import History, TiledArray, capture
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import Project, load_project, save_project
from inpaint_studio.core.results import result_layer_pixels
from inpaint_studio.engine.replay import replay, replay_plan
from inpaint_studio.engine.runner import Engine


def apply_generation(doc: Document, history: History, engine: Engine, job: InpaintJob, mask: np.ndarray):
    """What the studio does on Apply: run, add the result layer, record the entry with its inputs."""
    image = doc.composite()
    result = engine.run(job, Image.fromarray(image), mask)
    pixels = result_layer_pixels(np.asarray(result.images[0]), image)
    doc.add_layer(Layer(name=job.prompt or "fill", pixels=pixels, kind="result"))
    previous = history.head.snapshot if history.head else None
    entry = history.add(
        "classic" if job.is_classical else "generate",
        job.prompt or "Classical fill",
        params={"job": result.job.to_dict(), "seed": result.seeds[0]},
        snapshot=capture(doc, previous),
    )
    entry.inputs = {"image": TiledArray.capture(image), "mask": TiledArray.capture(mask)}
    return entry


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


@pytest.fixture
def saved_project(tmp_path, tiny_sd_inpaint, engine):
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (72, 88, 3), dtype=np.uint8))
    doc = Document.from_image(photo)
    history = History()
    history.add("open", "Opened", snapshot=capture(doc))
    mask1 = np.zeros((72, 88), np.uint8)
    mask1[10:40, 10:40] = 255
    job = InpaintJob(model=str(tiny_sd_inpaint), prompt="a cat", steps=2, seed=11)
    first = apply_generation(doc, history, engine, job, mask1)
    # A paint stroke between the generations: replay must not need it to be re-playable.
    paint = doc.new_layer("Sketch")
    paint.pixels[50:60, 50:80] = (255, 0, 0, 255)
    history.add("paint", "Brush stroke", snapshot=capture(doc, history.head.snapshot))
    mask2 = np.zeros((72, 88), np.uint8)
    mask2[30:60, 30:70] = 255  # overlaps the first result
    second = apply_generation(doc, history, engine, job.replace(prompt="a hat", seed=12), mask2)
    classic = apply_generation(doc, history, engine, InpaintJob(model="classic", seed=1), mask1)
    path = save_project(Project(document=doc, history=history), tmp_path / "chain.inpaint")
    return path, (first.id, second.id, classic.id)


def test_replay_from_a_saved_project_is_bit_identical(saved_project, engine):
    path, ids = saved_project
    history = load_project(path).history
    steps = list(replay(history, engine.run))
    assert [s.entry_id for s in steps] == list(ids)
    assert all(step.identical for step in steps)
    assert [s.job.seed for s in steps[:2]] == [11, 12]


def test_replay_from_an_entry_with_a_new_seed_branches(saved_project, engine):
    path, (first, second, classic) = saved_project
    history = load_project(path).history
    steps = list(replay(history, engine.run, start=first, seed=99))
    assert steps[0].job.seed == 99 and steps[0].identical is False
    # The second generation overlaps the first result, so it now sees different input pixels.
    assert steps[1].job.seed == 12 and steps[1].identical is False
    only_second = list(replay(history, engine.run, start=second))
    assert [s.entry_id for s in only_second] == [second, classic] and all(s.identical for s in only_second)


def test_replay_plan_refuses_what_cannot_be_replayed(saved_project):
    path, (first, _second, _classic) = saved_project
    history = load_project(path).history
    with pytest.raises(BadInputError, match="no history entry #999"):
        replay_plan(history, start=999)
    with pytest.raises(BadInputError, match="not a generation"):
        replay_plan(history, start=1)  # the "open" entry
    with pytest.raises(BadInputError, match="empty"):
        replay_plan(History())
    assert [e.id for e in replay_plan(history, until=first)] == [first]


def test_cli_replay_lists_reproduces_and_branches(saved_project, tmp_path, capsys):
    from inpaint_studio.cli import main

    path, (first, second, _classic) = saved_project
    assert main(["replay", str(path), "--list"]) == 0
    listing = capsys.readouterr().out
    assert f"#{first}" in listing and "generate" in listing and "seed 11" in listing
    out = tmp_path / "replayed"
    assert main(["replay", str(path), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("identical to the record") == 3
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3 and files[0].startswith(f"{first:03d}-")
    branch = tmp_path / "branch"
    assert main(["replay", str(path), "-o", str(branch), "--from", str(second), "--seed", "5", "-q"]) == 0
    assert "seed 5" in capsys.readouterr().out
    assert main(["replay", str(path), "-o", str(branch), "--from", "1"]) == 2
    assert "not a generation" in capsys.readouterr().err
