"""Property-based tests (hypothesis) of the parts every edit relies on.

* mask operations: invert, grow/shrink, feather, rectangles; the blend weight never reaches past its band;
* the whole edit geometry, end to end through `Engine.run` with the classical fill on images from 1x1 up,
  masks touching every edge: the output has the input's size and every pixel beyond the feather band is
  bit-identical (no off-by-one at image or tile edges);
* project files: any document and history (sizes across the 256-px tile edge, any names, opacities,
  metadata, branches) saves and opens again unchanged;
* the job and chain recipe format: any job round-trips through JSON; a value of the wrong kind is one
  sentence naming the setting, never another exception.

(tests/core/test_masks_geometry.py already covers crop_box, working_size and composite on their own.)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inpaint_studio.core import mask_ops, masks
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError, EmptyMaskError
from inpaint_studio.core.history import History, capture
from inpaint_studio.core.jobspec import (
    MAX_SEED,
    Area,
    ClassicalMethod,
    InpaintJob,
    MaskOptions,
    MemoryMode,
    OutputSize,
    SpeedOptions,
    Task,
)
from inpaint_studio.core.project import Project, load_project, save_project
from inpaint_studio.engine.chain import Chain, ChainStep
from tests.core.test_project import assert_same_document

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mask_arrays(max_side: int = 40) -> st.SearchStrategy[np.ndarray]:
    """Masks with soft values: random rectangles of random greys on black."""

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
        mask = np.zeros((height, width), np.uint8)
        for _ in range(draw(st.integers(0, 4))):
            x0, y0 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
            x1, y1 = draw(st.integers(x0 + 1, width)), draw(st.integers(y0 + 1, height))
            mask[y0:y1, x0:x1] = draw(st.integers(1, 255))
        return mask

    return build()


def distance_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pixel to the nearest pixel >= 128 (0 on the mask)."""
    hard = (mask >= 128).astype(np.uint8)
    if not hard.any():
        return np.full(mask.shape, np.inf)
    return cv2.distanceTransform(1 - hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


# ---- mask operations --------------------------------------------------------------------------------------------


@PROPERTY
@given(mask=mask_arrays(), px=st.integers(0, 12))
def test_mask_operations(mask: np.ndarray, px: int) -> None:
    before = mask.copy()
    assert np.array_equal(mask_ops.invert(mask_ops.invert(mask)), mask)
    grown, shrunk = mask_ops.grow(mask, px), mask_ops.shrink(mask, px)
    assert (grown >= mask).all() and (shrunk <= mask).all()
    assert (mask_ops.grow(mask, px + 1) >= grown).all()
    feathered = mask_ops.feather(mask, px)
    for out in (grown, shrunk, feathered):
        assert out.shape == mask.shape and out.dtype == np.uint8
    if px:
        # A blur only reaches about px pixels: far from anything painted it stays exactly 0.
        reach = cv2.dilate((mask > 0).astype(np.uint8), np.ones((4 * px + 3, 4 * px + 3), np.uint8))
        assert not feathered[reach == 0].any()
    assert np.array_equal(mask, before), "an operation changed its input"


@PROPERTY
@given(mask=mask_arrays(), rect=st.tuples(*[st.integers(-50, 90)] * 4), mode=st.sampled_from(["add", "subtract"]))
def test_rectangles_are_clipped_and_touch_only_their_pixels(mask: np.ndarray, rect: tuple[int, ...], mode: Any) -> None:
    out = mask_ops.fill_rect(mask, rect, mode)  # type: ignore[arg-type]
    height, width = mask.shape
    inside = np.zeros(mask.shape, bool)
    left, top, right, bottom = max(0, rect[0]), max(0, rect[1]), min(width, rect[2]), min(height, rect[3])
    if right > left and bottom > top:
        inside[top:bottom, left:right] = True
    assert np.array_equal(out[~inside], mask[~inside])
    assert (out[inside] == (255 if mode == "add" else 0)).all()


@PROPERTY
@given(mask=mask_arrays(), px=st.integers(0, 24))
def test_the_blend_weight_stays_inside_its_band(mask: np.ndarray, px: int) -> None:
    """1 on every painted pixel, exactly 0 beyond px pixels from the mask: what keeps the rest bit-identical."""
    weight = masks.feather(mask, px)
    assert weight.dtype == np.float32 and weight.shape == mask.shape
    assert ((weight >= 0) & (weight <= 1)).all()
    assert (weight[mask >= 128] == 1).all()
    assert not weight[distance_outside(mask) > px + 1].any()
    for threshold, box in ((1, masks.bbox(mask, threshold=1)), (masks.MASK_THRESHOLD, masks.bbox(mask))):
        ys, xs = np.nonzero(mask >= threshold)  # by default the box of what is masked, >= 128
        assert box == (None if ys.size == 0 else (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))


# ---- the edit geometry, end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classic_engine() -> Any:
    from inpaint_studio.engine.runner import Engine

    return Engine()


@st.composite
def edits(draw: st.DrawFn) -> dict[str, Any]:
    width, height = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    x0 = draw(st.sampled_from([0, width - 1]) | st.integers(0, width - 1))  # edges often
    y0 = draw(st.sampled_from([0, height - 1]) | st.integers(0, height - 1))
    x1 = draw(st.sampled_from([width]) | st.integers(x0 + 1, width))
    y1 = draw(st.sampled_from([height]) | st.integers(y0 + 1, height))
    return {
        "size": (width, height),
        "rect": (x0, y0, x1, y1),
        "grow": draw(st.integers(-3, 6)),
        "feather": draw(st.integers(0, 12)),
        "padding": draw(st.integers(0, 40)),
        "area": draw(st.sampled_from([Area.MASKED, Area.WHOLE])),
        "alpha": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(PROPERTY, max_examples=120)
@given(edit=edits())
def test_an_edit_changes_nothing_beyond_its_feather_band(edit: dict[str, Any], classic_engine: Any) -> None:
    width, height = edit["size"]
    rng = np.random.default_rng(edit["seed"])
    image = rng.integers(0, 256, (height, width, 4 if edit["alpha"] else 3), dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = edit["rect"]
    mask[y0:y1, x0:x1] = 255
    job = InpaintJob(
        model="classic",
        mask=MaskOptions(grow_px=edit["grow"], feather_px=edit["feather"]),
        padding_px=edit["padding"],
        area=edit["area"],
    )
    try:
        result = classic_engine.run(job, image, mask)
    except EmptyMaskError:
        assert edit["grow"] < 0  # only shrinking can empty a mask that selects something
        return
    except BadInputError as error:
        assert "covers the whole image" in str(error)  # nothing left to fill from
        return
    out = np.asarray(result.images[0])
    assert out.shape == image.shape, f"{out.shape} for {image.shape}"
    grown = masks.grow(mask, edit["grow"])
    beyond = distance_outside(grown) > edit["feather"] + 1
    assert np.array_equal(out[beyond], image[beyond]), "pixels beyond the feather band changed"
    left, top, right, bottom = result.region
    assert 0 <= left < right <= width and 0 <= top < bottom <= height


# ---- project files ----------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
METADATA = st.dictionaries(
    st.sampled_from(["seed", "prompt", "history_id", "note"]), st.integers(0, 9) | TEXT, max_size=3
)


@st.composite
def projects(draw: st.DrawFn) -> Project:
    width = draw(st.sampled_from([1, 255, 256, 257]) | st.integers(1, 300))
    height = draw(st.sampled_from([1, 256, 257]) | st.integers(1, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    layers = []
    for index in range(draw(st.integers(1, 3))):
        pixels = np.zeros((height, width, 4), np.uint8)
        if draw(st.booleans()):
            pixels[...] = rng.integers(0, 256, pixels.shape, dtype=np.uint8)
        layers.append(
            Layer(
                name=draw(TEXT),
                pixels=pixels,
                kind="base" if index == 0 else draw(st.sampled_from(["result", "paint"])),
                visible=draw(st.booleans()),
                opacity=draw(st.floats(0, 1)),
                metadata=draw(METADATA),
            )
        )
    document = Document(width, height, layers)
    document.metadata.update(path=draw(TEXT), parameters=draw(TEXT))
    history = History()
    history.add("open", draw(TEXT), snapshot=capture(document))
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.integers(-1, len(layers) - 1))
        x0, y0 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        x1, y1 = draw(st.integers(x0 + 1, width)), draw(st.integers(y0 + 1, height))
        if target < 0:
            document.mask[y0:y1, x0:x1] = draw(st.integers(0, 255))
        else:
            document.layers[target].pixels[y0:y1, x0:x1] = draw(st.integers(0, 255))
        if draw(st.booleans()) and len(history) > 1:  # branch from an earlier entry, like "Branch from here"
            history.set_head(draw(st.sampled_from(sorted(history.entries))))
        history.add(
            draw(st.sampled_from(["paint", "mask", "layer", "generate"])),
            draw(TEXT),
            params={"job": InpaintJob(prompt=draw(TEXT)).to_dict(), "n": draw(st.integers(0, 5))},
            snapshot=capture(document),
        )
    return Project(document=document, history=history, generate=InpaintJob(seed=1).to_dict(), extra={"k": draw(TEXT)})


@settings(PROPERTY, max_examples=40)
@given(project=projects())
def test_any_project_saves_and_opens_unchanged(project: Project) -> None:
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_project(save_project(project, Path(folder) / "p.inpaint"))
    a, b = project.document, loaded.document
    assert (a.size, a.active_layer_id, a.metadata["path"], a.metadata["parameters"]) == (
        b.size,
        b.active_layer_id,
        b.metadata.get("path"),
        b.metadata.get("parameters"),
    )
    assert_same_document(a, b)
    ha, hb = project.history, loaded.history
    assert hb is not None and not loaded.notes
    assert (ha.head_id, ha.next_id) == (hb.head_id, hb.next_id)
    for ea, eb in zip(ha, hb, strict=True):
        assert (ea.id, ea.parent_id, ea.kind, ea.title, ea.params) == (
            eb.id,
            eb.parent_id,
            eb.kind,
            eb.title,
            eb.params,
        )
        assert np.array_equal(ea.snapshot.composite(), eb.snapshot.composite())
        assert np.array_equal(ea.snapshot.mask.to_array(), eb.snapshot.mask.to_array())
    assert loaded.generate == project.generate and loaded.extra == project.extra


# ---- jobs and recipes -----------------------------------------------------------------------------------------------

NUMBER = st.floats(-10, 60, allow_nan=False)


@st.composite
def jobs(draw: st.DrawFn) -> InpaintJob:
    return InpaintJob(
        model=draw(st.sampled_from(["classic", "classic:ns", "owner/model", "/models/x.safetensors"])),
        prompt=draw(TEXT),
        negative_prompt=draw(TEXT),
        strength=draw(NUMBER),
        guidance_scale=draw(NUMBER),
        steps=draw(st.integers(-5, 600)),
        scheduler=draw(st.sampled_from(["default", "Euler a", "DPM++ 2M Karras", "nope"])),
        seed=draw(st.none() | st.integers(-1, MAX_SEED + 1)),
        variants=draw(st.integers(0, 20)),
        mask=MaskOptions(draw(st.integers(-300, 300)), draw(st.integers(-1, 300))),
        area=draw(st.sampled_from(Area)),
        padding_px=draw(st.integers(-1, 5000)),
        resolution=draw(st.none() | st.integers(0, 5000)),
        preserve_unmasked=draw(st.booleans()),
        color_match=draw(st.booleans()),
        output_size=draw(st.sampled_from(OutputSize)),
        classical_method=draw(st.sampled_from(ClassicalMethod)),
        device=draw(st.sampled_from(["auto", "cpu", "cuda:1"])),
        memory_mode=draw(st.sampled_from(MemoryMode)),
        task=draw(st.sampled_from(Task)),
        width=draw(st.none() | st.integers(0, 5000)),
        height=draw(st.none() | st.integers(0, 5000)),
        prompt_weighting=draw(st.booleans()),
        refiner=draw(st.none() | TEXT),
        refiner_switch=draw(NUMBER),
        controlnet=draw(st.none() | TEXT),
        controlnet_scale=draw(NUMBER),
        control_start=draw(NUMBER),
        control_end=draw(NUMBER),
        prior_steps=draw(st.integers(0, 600)),
        prior_guidance_scale=draw(NUMBER),
        speed=SpeedOptions(
            draw(st.sampled_from(["auto", "sdpa", "sliced", "x"])),
            draw(st.sampled_from(["auto", "on", "off"])),
            draw(st.sampled_from(["auto", "on", "off"])),
            draw(st.booleans()),
        ),
    )


@PROPERTY
@given(job=jobs())
def test_any_job_round_trips_through_json_and_says_what_is_wrong(job: InpaintJob) -> None:
    data = json.loads(json.dumps(job.to_dict()))
    assert InpaintJob.from_dict(data) == job
    problems = job.problems()
    assert all(isinstance(p, str) and p.endswith(".") and "\n" not in p for p in problems)
    if problems:
        with pytest.raises(BadInputError):
            job.validate()
    else:
        assert job.validate() is job


WRONG = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), st.builds(list), st.builds(dict)
)


@PROPERTY
@given(job=jobs(), field=st.sampled_from(sorted(InpaintJob().to_dict())), value=WRONG)
def test_a_setting_of_the_wrong_kind_is_one_sentence_naming_it(job: InpaintJob, field: str, value: Any) -> None:
    data = job.to_dict()
    data[field] = value
    try:
        rebuilt = InpaintJob.from_dict(data)
    except BadInputError as error:
        assert field in str(error) and "\n" not in str(error)
        return
    rebuilt.problems()  # accepted (the value had the right kind): checking it must not fail either


@settings(PROPERTY, max_examples=40)
@given(first=jobs(), rest=st.lists(jobs(), max_size=3), names=st.lists(TEXT, min_size=4, max_size=4))
def test_any_chain_round_trips_through_its_recipe_format(
    first: InpaintJob, rest: list[InpaintJob], names: list[str]
) -> None:
    steps = tuple(
        ChainStep(job.replace(variants=1), names[index], "mask" if job.task is Task.INPAINT else None)
        for index, job in enumerate([first, *rest])
    )
    chain = Chain(steps, {"image": "a.png", "mask": "m.png"}, {"image": "0123456789abcdef"})
    recipe = json.loads(json.dumps(chain.to_dict()))
    assert Chain.from_dict(recipe) == chain
    problems = chain.problems({"image", "mask"})
    assert all(isinstance(p, str) and p.endswith(".") for p in problems)
    if problems:
        with pytest.raises(BadInputError):
            chain.validate({"image", "mask"})
    else:
        assert chain.validate({"image", "mask"}) is chain
