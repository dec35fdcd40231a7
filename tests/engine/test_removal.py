"""Removal networks in the engine, with MI-GAN's published ONNX interface and random weights (runs everywhere:
onnxruntime is a base dependency). LaMa and MAT, which need spandrel, are in test_removal_vision.py.

Each network file is built here and reaches the engine through the path a downloaded file takes: a catalog
name resolved in a Hugging Face cache laid out as huggingface_hub does, or the file's own path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio import cli
from inpaint_studio.core.errors import BadInputError, CancelledError, ModelUnavailableError, OutOfMemoryError
from inpaint_studio.core.history import History, capture
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.parameters import parse_parameters
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine import models
from inpaint_studio.engine.catalog import installed_models, removal_entries, removal_entry
from inpaint_studio.engine.classical import LARGE_HOLE_PX, hole_thickness_px
from inpaint_studio.engine.events import CancelToken, JobCancelled, JobFailed
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.model_list import model_choices
from inpaint_studio.engine.models import resolve_model
from inpaint_studio.engine.removal import RemovalModels, fill_region, load_network
from inpaint_studio.engine.removal_files import LAMA, MAT, MIGAN, removal_architecture
from inpaint_studio.engine.replay import replay
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import Events, box_mask, photo
from tests.engine.test_replay import apply_generation
from tests.removal_models import (
    OpensAFile,
    assert_only_the_feathered_hole_changed,
    build_migan_onnx,
    build_other_onnx,
    hub_cache,
    photo_with_hole,
    use_hub_cache,
)


@pytest.fixture(scope="module")
def migan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_migan_onnx(tmp_path_factory.mktemp("migan") / "migan_pipeline_v2.onnx")


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_hub_cache(tmp_path, monkeypatch)


# ---- the catalog and references ---------------------------------------------------------------------------


def test_the_catalog_has_the_three_removal_networks_as_single_files_with_size_and_licence() -> None:
    entries = {entry.id: entry for entry in removal_entries()}
    assert set(entries) == {"lama", "mat", "migan"}
    assert entries["migan"].file.endswith(".onnx") and entries["migan"].licence == "MIT"
    assert entries["lama"].file.endswith(".safetensors") and entries["mat"].file.endswith(".safetensors")
    assert "non-commercial" in entries["mat"].licence
    assert all(e.repo.count("/") == 1 and 0 < e.download_gb < 1 and e.architecture for e in entries.values())


def test_a_catalog_name_resolves_to_its_cached_file_and_is_listed_as_installed(cache: Path, migan: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"download it with `inpaint-studio download migan` \(about"):
        resolve_model("migan")
    entry = removal_entry("migan")
    snapshot = hub_cache(cache, entry.repo, {entry.file: migan, "README.md": migan})
    info = resolve_model("migan")
    assert (info.family, info.source, info.pipeline_class) == (Family.REMOVAL, "hub", MIGAN)
    assert info.path == snapshot / entry.file and info.revision == "b" * 40
    found = installed_models(cache)
    assert [(m.id, m.family, m.path.name) for m in found] == [("migan", Family.REMOVAL, entry.file)]
    row = next(c for c in model_choices(found, []) if c.reference == "migan")
    assert row.installed and "installed" in row.label and row.family == "removal"
    lama = next(c for c in model_choices(found, []) if c.reference == "lama")
    assert not lama.installed and lama.details().startswith("Not installed: needs a 0.2 GB download (licence")


def test_download_fetches_the_one_catalog_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id: str, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    marker = object()
    assert models.download("lama", progress=marker) == tmp_path
    assert calls == [("anyisalin/big-lama", {"allow_patterns": ["big-lama.safetensors"], "tqdm_class": marker})]


def test_removal_files_are_told_apart_from_checkpoints_without_unpickling(tmp_path: Path, migan: Path) -> None:
    import torch
    from safetensors.torch import save_file

    lama_keys = {"model.model.1.bn_l.running_mean": torch.zeros(2), "model.model.5.ffc.convl2l.weight": torch.zeros(2)}
    lama_keys["model.model.5.ffc.convg2g.ffc.conv_layer.weight"] = torch.zeros(2)
    save_file(lama_keys, tmp_path / "lama.safetensors")
    torch.save(lama_keys, tmp_path / "lama.pth")
    mat_keys = {"synthesis.first_stage.conv_first.conv.resample_filter": torch.zeros(2)}
    torch.save(mat_keys, tmp_path / "mat.pt", _use_new_zipfile_serialization=False)  # the legacy format
    assert removal_architecture(tmp_path / "lama.safetensors") == LAMA
    assert removal_architecture(tmp_path / "lama.pth") == LAMA
    assert removal_architecture(tmp_path / "mat.pt") == MAT
    assert removal_architecture(migan) == MIGAN
    info = resolve_model(str(tmp_path / "lama.pth"))
    assert (info.family, info.source, info.pipeline_class) == (Family.REMOVAL, "removal_file", LAMA)
    torch.save({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, tmp_path / "sd.ckpt")
    assert removal_architecture(tmp_path / "sd.ckpt") is None


def test_a_hostile_pickle_with_lama_names_is_refused_and_never_runs(tmp_path: Path, engine: Engine) -> None:
    import torch

    marker = tmp_path / "pwned"
    names = ["model.model.1.bn_l.running_mean", "model.model.5.ffc.convl2l.weight", "x.convg2g.y"]
    torch.save({name: OpensAFile(marker) for name in names}, tmp_path / "big-lama.pth")
    assert removal_architecture(tmp_path / "big-lama.pth") == LAMA  # judged from names: nothing ran
    image, mask = photo_with_hole(96, 96, (30, 30, 60, 60))
    with pytest.raises(ModelUnavailableError) as refused:
        engine.run(InpaintJob(model=str(tmp_path / "big-lama.pth")), image, mask)
    # Without spandrel the sentence says what to install; with it, torch's weights-only reader refuses the pickle.
    assert "holds more than weights" in str(refused.value) or "needs spandrel" in str(refused.value)
    assert not marker.exists()


# ---- running ----------------------------------------------------------------------------------------------


def test_migan_on_a_6000x4000_photo_changes_only_the_feathered_hole(engine: Engine, migan: Path) -> None:
    image, mask = photo_with_hole(6000, 4000, (2500, 1600, 3500, 2400))  # a 1000 x 800 px hole
    job = InpaintJob(model=str(migan), seed=3)
    events = Events()
    result = engine.run(job, image, mask, on_event=events.append)
    out = np.asarray(result.images[0])
    assert out.shape == image.shape and events.progress_ok()
    left, top, right, bottom = result.region
    assert right - left < 1500 and bottom - top < 1500  # the masked region, not the photo
    assert_only_the_feathered_hole_changed(image, out, result.job, mask)
    record = result.record()
    assert record.job.prompt == "" and record.seed == 0 and record.seed_used is None
    assert record.extra["removal_network"] == MIGAN and record.extra["working_size"] == [512, 512]
    assert record.model["family"] == "removal" and not record.ran_diffusion


def test_replay_of_a_removal_entry_is_bit_exact(engine: Engine, migan: Path) -> None:
    from inpaint_studio.core.document import Document

    doc = Document.from_image(Image.fromarray(photo_with_hole(160, 120, (0, 0, 1, 1))[0]))
    history = History()
    history.add("open", "Opened", snapshot=capture(doc))
    entry = apply_generation(
        doc, history, engine, InpaintJob(model=str(migan), prompt="ignored"), box_mask(160, 120, (50, 40, 110, 90))
    )
    assert GenerationRecord.from_dict(entry.params).job.prompt == ""  # not recorded: MI-GAN takes no prompt
    engine.release()  # replay loads the network again
    steps = list(replay(history, engine.run))
    assert [s.identical for s in steps] == [True]


def test_the_loaded_network_is_kept_and_released_on_a_switch(tmp_path: Path, migan: Path) -> None:
    loads = []

    def counting_loader(info, device):
        loads.append(info.path.name)
        return load_network(info, device)

    engine = Engine()
    engine.removal = RemovalModels(counting_loader)
    other = build_migan_onnx(tmp_path / "other-migan.onnx", seed=1)
    image, mask = photo_with_hole(128, 96, (40, 30, 80, 70))
    first = engine.run(InpaintJob(model=str(migan)), image, mask)
    again = engine.run(InpaintJob(model=str(migan)), image, mask)
    switched = engine.run(InpaintJob(model=str(other)), image, mask)
    assert loads == [migan.name, other.name] and engine.removal.loaded.path == other
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(again.images[0]))
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(switched.images[0]))
    engine.release()
    assert engine.removal.loaded is None


def test_fill_region_gives_box_sized_pixels_for_any_box(migan: Path) -> None:
    info = resolve_model(str(migan))
    network = load_network(info, "cpu")
    for width, height in ((37, 200), (640, 480), (1200, 300)):
        rgb, hole = photo_with_hole(width, height, (width // 4, height // 4, width // 2, height // 2))
        filled = fill_region(network, rgb, hole)
        assert filled.shape == (height, width, 3) and filled.dtype == np.uint8
    # A one-pixel scratch across a wide box survives the scale-down to the working size.
    rgb = np.full((200, 2000, 3), 90, np.uint8)
    scratch = np.zeros((200, 2000), np.uint8)
    scratch[100, :] = 255
    rgb[100, :] = (255, 0, 0)
    filled = fill_region(network, rgb, scratch)
    assert np.abs(filled[100, 100:1900].astype(int) - (255, 0, 0)).sum(axis=1).min() > 60  # no red line kept


def test_an_onnx_with_other_inputs_or_no_onnx_at_all_is_one_sentence(tmp_path: Path, engine: Engine) -> None:
    image, mask = photo_with_hole(96, 96, (30, 30, 60, 60))
    other = build_other_onnx(tmp_path / "upscaler.onnx")
    with pytest.raises(ModelUnavailableError, match=r"ONNX model with other inputs \(input tensor\(float\)\)"):
        engine.run(InpaintJob(model=str(other)), image, mask)
    (tmp_path / "broken.onnx").write_bytes(b"not a graph at all")
    events = Events()
    with pytest.raises(ModelUnavailableError, match="is not a readable ONNX model") as failed:
        engine.run(InpaintJob(model=str(tmp_path / "broken.onnx")), image, mask, on_event=events.append)
    assert str(failed.value).count(".") >= 1 and "\n" not in str(failed.value)
    assert isinstance(events[-1], JobFailed)


def test_out_of_memory_and_cancel_are_sentences_and_leave_the_engine_usable(migan: Path) -> None:
    class Exhausted:
        contract = load_network(resolve_model(str(migan)), "cpu").contract
        device = "cpu"

        def __call__(self, rgb, hole, seed):
            raise MemoryError

    engine = Engine()
    engine.removal = RemovalModels(lambda info, device: Exhausted())
    image, mask = photo_with_hole(96, 96, (30, 30, 60, 60))
    with pytest.raises(OutOfMemoryError, match="ran out of memory while removing") as failed:
        engine.run(InpaintJob(model=str(migan)), image, mask)
    assert failed.value.exit_code == 4
    engine.removal = RemovalModels()
    cancel = CancelToken()
    cancel.cancel()
    events = Events()
    with pytest.raises(CancelledError):
        engine.run(InpaintJob(model=str(migan)), image, mask, cancel=cancel, on_event=events.append)
    assert isinstance(events[-1], JobCancelled)
    assert engine.run(InpaintJob(model=str(migan)), image, mask).images  # still usable


# ---- remove, then refine ----------------------------------------------------------------------------------


def test_prefill_values_are_checked_with_one_sentence_each() -> None:
    sd = "stable-diffusion-v1-5/stable-diffusion-inpainting"
    assert InpaintJob(model=sd, prefill="migan", strength=0.6).problems() == []
    assert InpaintJob(model=sd, prefill="classic", strength=0.6).problems() == []
    assert InpaintJob(model=sd, prefill="/x/big-lama.pth", strength=0.6).problems() == []
    cases = {
        InpaintJob(model=sd, prefill="migan"): "At strength 1 the pre-filled area is replaced entirely",
        InpaintJob(model=sd, prefill="", strength=0.5): "The pre-fill is empty",
        InpaintJob(model=sd, prefill="photo.png", strength=0.5): "is not a removal model",
        InpaintJob(model="classic", prefill="lama"): "choose a diffusion model",
        InpaintJob(model="lama", prefill="migan"): "choose a diffusion model",
    }
    for job, sentence in cases.items():
        (problem,) = job.problems()
        assert sentence in problem and problem.endswith(".")


def test_remove_then_refine_prefills_the_hole_then_diffuses(engine: Engine, migan: Path, tiny_sd_inpaint) -> None:
    image, mask = photo_with_hole(96, 80, (30, 20, 70, 60))
    base = InpaintJob(model=str(tiny_sd_inpaint), prompt="a stone wall", steps=4, strength=0.5, seed=5)
    plain = engine.run(base, image, mask)
    events = Events()
    refined = engine.run(base.replace(prefill=str(migan)), image, mask, on_event=events.append)
    again = engine.run(base.replace(prefill=str(migan)), image, mask)
    out = np.asarray(refined.images[0])
    assert events.progress_ok()  # the pre-fill adds no second start: the diffusion run's steps are exact
    assert not np.array_equal(out, np.asarray(plain.images[0]))  # the pre-filled pixels were the input
    assert np.array_equal(out, np.asarray(again.images[0]))  # and reproducibly so
    assert_only_the_feathered_hole_changed(image, out, refined.job, mask)
    record = refined.record()
    assert record.job.prefill == str(migan) and record.extra["prefill"]["removal_network"] == MIGAN
    assert record.ran_diffusion and record.seed_used == 5


def test_a_diffusion_model_as_prefill_is_refused(engine: Engine, tiny_sd_inpaint) -> None:
    image, mask = photo_with_hole(64, 64, (20, 20, 40, 40))
    job = InpaintJob(model=str(tiny_sd_inpaint), prompt="x", steps=2, strength=0.5, prefill=str(tiny_sd_inpaint))
    assert job.problems()  # a folder is not a removal model file
    with pytest.raises(BadInputError):
        engine.run(job, image, mask)


# ---- the classical fill: what it records, and when a hole is too large for it ------------------------------


def test_hole_thickness_is_the_width_at_the_thickest_point() -> None:
    assert hole_thickness_px(np.zeros((10, 10), np.uint8)) == 0
    wire = np.zeros((300, 2000), np.uint8)
    wire[150:153, :] = 255
    assert hole_thickness_px(wire) <= 4  # long but thin: the classical fill's case
    patch = box_mask(512, 512, (200, 200, 290, 305))  # the 90 x 105 px patch
    assert 85 <= hole_thickness_px(patch) <= 95 and hole_thickness_px(patch) > LARGE_HOLE_PX


def test_the_classical_fill_flags_a_large_hole_and_records_no_diffusion_settings(engine: Engine) -> None:
    image = photo(256, 256)
    job = InpaintJob(model="classic", prompt="a door", steps=50, scheduler="Euler", seed=77, guidance_scale=3)
    spot = engine.run(job, image, box_mask(256, 256, (100, 100, 112, 110)))
    patch = engine.run(job, image, box_mask(256, 256, (60, 60, 150, 165)))
    assert spot.extra["hole_too_large"] is False and patch.extra["hole_too_large"] is True
    assert patch.extra["hole_thickness_px"] > LARGE_HOLE_PX
    recorded = patch.record().job
    defaults = InpaintJob()
    assert (recorded.prompt, recorded.steps, recorded.scheduler, recorded.seed) == ("", defaults.steps, "default", 0)
    assert recorded.guidance_scale == defaults.guidance_scale


# ---- the command line -------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    image, mask = photo_with_hole(160, 120, (50, 40, 110, 90))
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "photo.png", tmp_path / "mask.png"


def test_cli_removes_with_a_model_file_and_writes_no_diffusion_settings(
    files, tmp_path: Path, migan: Path, capsys
) -> None:
    image, mask = files
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--model", str(migan), "-q"]) == 0
    with Image.open(out) as written:
        params = parse_parameters(written.info["parameters"])
    assert params["Model"] == str(migan) and params["prompt"] == ""
    assert not {"Seed", "Steps", "Sampler", "CFG scale"} & set(params)
    assert "seed" not in capsys.readouterr().out


def test_cli_exit_codes_for_removal(files, tmp_path: Path, migan: Path, cache: Path, capsys) -> None:
    image, mask = files
    out = tmp_path / "out.png"
    base = ["inpaint", str(image), "--mask", str(mask), "-o", str(out), "-q"]
    assert cli.main([*base, "--model", str(migan), "--prompt", "a cat"]) == 2
    assert "takes no prompt" in capsys.readouterr().err and not out.exists()
    assert cli.main([*base, "--model", "lama"]) == 3
    assert "inpaint-studio download lama" in capsys.readouterr().err
    assert cli.main([*base, "--model", str(build_other_onnx(tmp_path / "other.onnx"))]) == 3
    assert "other inputs" in capsys.readouterr().err and not out.exists()
    assert cli.main([*base, "--prefill", "migan"]) == 2  # the classical fill takes no pre-fill
    assert "choose a diffusion model" in capsys.readouterr().err
    assert cli.main([*base, "--prompt", "a door"]) == 2  # the default model is the classical fill
    assert "The classical fill takes no prompt" in capsys.readouterr().err and not out.exists()


def test_cli_says_when_a_hole_is_too_large_for_the_classical_fill(files, tmp_path: Path, capsys) -> None:
    image, mask = files  # a 60 x 50 px hole
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "px thick" in err and "--model migan" in err
    small = tmp_path / "small.png"
    Image.fromarray(box_mask(160, 120, (70, 60, 80, 66))).save(small)
    assert cli.main(["inpaint", str(image), "--mask", str(small), "-o", str(out), "-q"]) == 0
    assert "px thick" not in capsys.readouterr().err


def test_cli_download_of_a_removal_model_fetches_its_file(monkeypatch, cache: Path, migan: Path, capsys) -> None:
    import huggingface_hub

    entry = removal_entry("migan")

    downloaded = []

    def fake_snapshot_download(repo_id: str, **kwargs):
        assert repo_id == entry.repo and kwargs["allow_patterns"] == [entry.file]
        if not kwargs.get("local_files_only"):  # the download itself; then the resolution finds it in the cache
            downloaded.append(hub_cache(cache, repo_id, {entry.file: migan}))
        if not downloaded:
            raise FileNotFoundError(entry.file)
        return str(downloaded[0])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert cli.main(["download", "migan"]) == 0
    assert len(downloaded) == 1 and "migan: removal model installed" in capsys.readouterr().out


def test_a_chain_recipe_removes_then_refines(engine: Engine, migan: Path, tiny_sd_inpaint) -> None:
    from inpaint_studio.engine.chain import Chain, run_chain

    image, mask = photo_with_hole(96, 80, (30, 20, 70, 60))
    recipe = {
        "format": "inpaint-studio/chain",
        "version": 1,
        "defaults": {"steps": 4, "seed": 2},
        "steps": [
            {"name": "remove", "job": {"model": str(migan)}},
            {
                "name": "refine",
                "job": {"model": str(tiny_sd_inpaint), "prompt": "moss", "prefill": str(migan), "strength": 0.5},
            },
        ],
    }
    result = run_chain(engine, Chain.from_dict(recipe), {"image": image, "mask": mask})
    record = result.record()
    assert record["steps"][0]["result"]["extra"]["removal_network"] == MIGAN
    assert record["steps"][1]["job"]["prefill"] == str(migan)
    assert record["steps"][1]["result"]["extra"]["prefill"]["removal_network"] == MIGAN
    again = run_chain(engine, Chain.from_dict(record), {"image": image, "mask": mask})  # the record replays
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(result.images, again.images))


def test_which_engine_runs_is_one_line_and_the_default_choice_means_removal(monkeypatch) -> None:
    from inpaint_studio.core.jobspec import ClassicalMethod
    from inpaint_studio.engine import model_list
    from inpaint_studio.engine.catalog import InstalledModel

    def choices(installed: list[str]) -> list:
        found = [InstalledModel(name, Path(f"/cache/{name}"), 0.1, Family.REMOVAL) for name in installed]
        return model_choices(found, [])

    monkeypatch.setattr(model_list, "_installed", lambda package: package == "onnxruntime")  # no spandrel here
    default = InpaintJob()
    assert model_list.model_to_run(default, choices([])) == "classic"
    assert model_list.engine_summary(default, choices([])).startswith("Will run: the classical fill (auto); for")
    both = choices(["lama", "migan"])
    assert model_list.model_to_run(default, both) == "migan"  # LaMa cannot run without spandrel
    assert model_list.engine_summary(default, both).startswith("Will run: MI-GAN removal (installed;")
    telea = default.replace(classical_method=ClassicalMethod.TELEA)
    assert model_list.model_to_run(telea, both) == "classic"  # an explicit fill method is the classical fill
    lama = model_list.engine_summary(default.replace(model="lama"), both)
    assert lama == (
        "Will run: LaMa removal, no prompt, which needs the optional vision parts: "
        'pip install "inpaint-studio[vision]".'
    )
    monkeypatch.setattr(model_list, "_installed", lambda package: True)
    assert model_list.model_to_run(default, both) == "lama"  # LaMa first when it can run
    sd = default.replace(model="stable-diffusion-v1-5/stable-diffusion-inpainting", prefill="migan", strength=0.6)
    assert model_list.engine_summary(sd, both) == (
        "Will run: MI-GAN removal, then Stable Diffusion 1.5 Inpainting, 30 steps at strength 0.6 with no prompt "
        "(to remove an object: Remove, Shift+Delete)."
    )
