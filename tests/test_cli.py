"""The headless command line: outputs, metadata, exit codes, and nothing written on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.parameters import parse_parameters
from inpaint_studio.core.record import GenerationRecord


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (67, 101, 3), dtype=np.uint8)).save(image)
    mask = np.zeros((67, 101), np.uint8)
    mask[20:40, 30:60] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    return image, mask_path, tmp_path


def test_classical_inpaint_writes_the_output_with_parameters(files, capsys):
    image, mask, tmp = files
    out = tmp / "out.png"
    assert main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--seed", "5", "-q"]) == 0
    with Image.open(out) as result:
        assert result.size == (101, 67)
        params = parse_parameters(result.info["parameters"])
    # issue 11: the classical fill uses no seed, steps or sampler, so none is written (the seed was ignored).
    assert params["Model"] == "classic" and params["Mask blur"] == "8" and params["prompt"] == ""
    assert not {"Seed", "Steps", "Sampler", "CFG scale", "Denoising strength"} & set(params)
    captured = capsys.readouterr()
    assert "seed" not in captured.out and "does not use --seed; ignored" in captured.err


def test_diffusion_variants_and_progress_bar(files, tiny_sd_inpaint, capsys):
    image, mask, tmp = files
    out = tmp / "cat.png"
    argv = ["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--model", str(tiny_sd_inpaint)]
    argv += ["--prompt", "a cat", "--steps", "2", "--seed", "9", "--variants", "2", "--scheduler", "Euler"]
    assert main(argv) == 0
    first, second = tmp / "cat-1.png", tmp / "cat-2.png"
    assert first.is_file() and second.is_file() and not out.exists()
    with Image.open(second) as img:
        params = parse_parameters(img.info["parameters"])
    assert params["prompt"] == "a cat" and params["Seed"] == "10" and params["Sampler"] == "Euler"
    captured = capsys.readouterr()
    # The progress bar reached the end: the last step of the second variant, the bar full.
    assert f"[{'#' * 30}] Variant 2 of 2, step 2 of 2" in captured.err


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--strength", "0"], 2, "Strength is 0.0"),
        (["--model", "nobody/nothing"], 3, "not installed"),
        (["--model", "/no/such/folder"], 3, "was not found"),
        (["--steps", "0"], 2, "Steps is 0"),
    ],
)
def test_bad_parameters_exit_with_a_code_and_one_line(files, capsys, extra, code, needle):
    image, mask, tmp = files
    out = tmp / "out.png"
    assert main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not out.exists()


def test_bad_files_exit_2_and_write_nothing(files, capsys):
    image, mask, tmp = files
    out = tmp / "out.png"
    out.write_bytes(b"previous result")
    small = tmp / "small.png"
    Image.new("L", (10, 10), 255).save(small)
    assert main(["inpaint", str(image), "--mask", str(small), "-o", str(out)]) == 2
    assert "10x10 but the image is 101x67" in capsys.readouterr().err
    empty = tmp / "empty.png"
    Image.new("L", (101, 67), 0).save(empty)
    assert main(["inpaint", str(image), "--mask", str(empty), "-o", str(out)]) == 2
    assert "mask is empty" in capsys.readouterr().err
    zero = tmp / "zero.jpg"
    zero.write_bytes(b"")
    assert main(["inpaint", str(zero), "--mask", str(mask), "-o", str(out)]) == 2
    assert "zero.jpg" in capsys.readouterr().err
    assert main(["inpaint", str(image), "--mask", str(mask), "-o", str(tmp / "out.xyz")]) == 2
    assert out.read_bytes() == b"previous result"  # never overwritten by a failed run
    assert sorted(p.name for p in tmp.iterdir()) == [
        "empty.png",
        "mask.png",
        "out.png",
        "photo.png",
        "small.png",
        "zero.jpg",
    ]


def test_models_lists_classic_and_the_catalog(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "classic" in out and "stable-diffusion-v1-5/stable-diffusion-inpainting" in out


def test_console_entry_point_runs_headless():
    proc = subprocess.run(
        [sys.executable, "-m", "inpaint_studio", "inpaint", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "--mask" in proc.stdout


def test_ctrl_c_cancels_with_130_and_writes_nothing(files, tiny_sd_inpaint):
    import os
    import signal

    image, mask, tmp = files
    out = tmp / "never.png"
    argv = [sys.executable, "-m", "inpaint_studio", "inpaint", str(image), "--mask", str(mask), "-o", str(out)]
    argv += ["--model", str(tiny_sd_inpaint), "--steps", "400", "--resolution", "128", "--seed", "1"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    seen = ""
    while not any(f"step {n} of" in seen.lower() for n in (1, 2)):  # wait for the first denoising steps
        char = proc.stderr.read(1)
        assert char, f"process ended early: {seen}"
        seen += char
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130
    assert "Cancel" in seen + rest
    assert not out.exists()


# ---- chain ----------------------------------------------------------------------------------------------


@pytest.fixture
def chain_recipe(files, tiny_sd, tiny_sd_inpaint):
    """A recipe beside its inputs: inpaint the photo, inpaint again with another model, refine the area."""
    import json

    image, mask, tmp = files
    data = {
        "format": "inpaint-studio/chain",
        "version": 1,
        "inputs": {"image": image.name, "mask": mask.name},
        "defaults": {"steps": 2, "seed": 4},
        "steps": [
            {"name": "fill", "job": {"model": str(tiny_sd_inpaint), "prompt": "a cat"}},
            {"name": "style", "mask": "mask", "job": {"model": str(tiny_sd), "task": "img2img", "strength": 0.5}},
        ],
    }
    path = tmp / "recipe.json"
    path.write_text(json.dumps(data))
    return path


def test_chain_writes_each_step_a_grid_and_a_record_that_replays(chain_recipe, capsys):
    import json

    out = chain_recipe.parent / "out"
    assert main(["chain", str(chain_recipe), "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01-fill.png", "02-style.png", "grid.png", "record.json"]
    with Image.open(out / "02-style.png") as img:
        params = parse_parameters(img.info["parameters"])
        assert img.size == (101, 67)
    assert params["Task"] == "img2img" and params["Chain step"] == "2 of 2" and params["Seed"] == "4"
    with Image.open(out / "grid.png") as grid:
        assert grid.height > 200 and grid.width > 4 * 200  # base, mask and two steps side by side
    record = json.loads((out / "record.json").read_text())
    assert [GenerationRecord.from_dict(s["result"]).seed for s in record["steps"]] == [4, 4]
    assert "01-fill.png" in capsys.readouterr().out
    again = chain_recipe.parent / "again"
    assert main(["chain", str(out / "record.json"), "-o", str(again), "-q"]) == 0
    for name in ("01-fill.png", "02-style.png"):
        with Image.open(out / name) as a, Image.open(again / name) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert "differs from the recorded one" not in capsys.readouterr().err


def test_chain_replay_warns_when_an_input_changed(chain_recipe, files, capsys):
    tmp = files[2]
    out = tmp / "out"
    assert main(["chain", str(chain_recipe), "-o", str(out), "-q"]) == 0
    other = tmp / "other.png"
    Image.fromarray(np.zeros((67, 101, 3), np.uint8)).save(other)
    assert main(["chain", str(out / "record.json"), "-o", str(tmp / "b"), "-q", "--input", f"image={other}"]) == 0
    assert "the input 'image' differs from the recorded one" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "inpaint-studio/chain", "version": 9, "steps": []}', "version 9 is not supported"),
        (
            '{"format": "inpaint-studio/chain", "version": 1, "steps": [{"job": {"task": "inpaint"}}]}',
            "no 'image' input was given",
        ),
    ],
)
def test_bad_recipes_exit_2_with_one_line(files, capsys, content, needle):
    _, _, tmp = files
    recipe = tmp / "bad.json"
    recipe.write_text(content)
    assert main(["chain", str(recipe), "-o", str(tmp / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp / "out").exists()


def test_chain_failure_keeps_the_finished_steps(chain_recipe, capsys):
    import json

    data = json.loads(chain_recipe.read_text())
    data["steps"][1]["job"]["model"] = "nobody/nothing"  # fails only when step 2 starts
    chain_recipe.write_text(json.dumps(data))
    out = chain_recipe.parent / "out"
    assert main(["chain", str(chain_recipe), "-o", str(out), "-q"]) == 3
    assert sorted(p.name for p in out.iterdir()) == ["01-fill.png", "grid.png", "record.json"]
    record = json.loads((out / "record.json").read_text())
    assert "result" in record["steps"][0] and "result" not in record["steps"][1]
    assert "not installed" in capsys.readouterr().err


def test_inpaint_exposes_weighting_controlnet_and_speed_settings(files, tiny_sd_inpaint, tiny_controlnet):
    image, mask, tmp = files
    out = tmp / "cn.png"
    argv = ["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--model", str(tiny_sd_inpaint), "-q"]
    argv += [
        "--steps",
        "2",
        "--seed",
        "3",
        "--prompt",
        "a (cat)1.2",
        "--weighted",
        "--controlnet",
        str(tiny_controlnet),
    ]
    argv += ["--control-scale", "0.7", "--control-end", "0.8", "--attention", "sliced", "--vae-tiling", "on"]
    assert main(argv) == 0
    with Image.open(out) as img:
        assert img.size == (101, 67)
    assert main([*argv[:-2], "--vae-tiling", "on", "--control-start", "0.9", "--control-end", "0.5"]) == 2


def test_inpaint_refuses_malformed_weighting_with_one_line(files, tiny_sd_inpaint, capsys):
    image, mask, tmp = files
    argv = ["inpaint", str(image), "--mask", str(mask), "-o", str(tmp / "w.png"), "--model", str(tiny_sd_inpaint)]
    assert main([*argv, "--prompt", "a (cat", "--weighted", "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without a closing ')'" in err[0]
    assert not (tmp / "w.png").exists()


def test_models_lists_the_models_added_in_the_studio_and_adds_its_own(capsys, tiny_sd_inpaint: Path) -> None:
    from inpaint_studio.core.user_models import UserModels

    UserModels.load().add(str(tiny_sd_inpaint))  # what the studio's "+ Add model folder…" records
    assert main(["models", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    mine = rows[str(tiny_sd_inpaint)]
    assert mine["source"] == "local" and mine["installed"] and "(your folder)" in mine["name"]
    assert main(["models", "--remove", str(tiny_sd_inpaint)]) == 0
    assert str(tiny_sd_inpaint) not in UserModels.load().paths
    assert main(["models", "--add", str(tiny_sd_inpaint)]) == 0
    assert UserModels.load().paths == [str(tiny_sd_inpaint)]
    assert main(["models", "--add", str(tiny_sd_inpaint.parent)]) == 3  # not a model: one sentence, exit 3
    assert "model_index.json" in capsys.readouterr().err


def test_a_word_that_is_not_a_command_or_a_file_is_an_error_not_a_window(capsys) -> None:
    from PySide6.QtWidgets import QApplication

    before = QApplication.instance()
    assert main(["inpiant", "photo.jpg"]) == 2
    assert "'inpiant' is neither a command nor an existing file" in capsys.readouterr().err
    assert QApplication.instance() is before  # no window was started
