"""The command line with add-ons: --lora / --embedding / --reference on `inpaint`, add-ons in chain recipes,
`models --addons` and `download` of an add-on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.parameters import parse_parameters


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "reference.png")
    return tmp_path


def inpaint_args(files: Path, model: Path, out: str, *more: str) -> list[str]:
    head = ["inpaint", str(files / "photo.png"), "--mask", str(files / "mask.png"), "-o", str(files / out)]
    return [*head, "--model", str(model), "--prompt", "a tinystyle apple", "--steps", "2", "--seed", "4", "-q", *more]


def test_loras_embeddings_and_a_reference_from_the_command_line(
    files, tiny_sd_inpaint, tiny_lora, tiny_embedding, tiny_ip_adapter, capsys
):
    plain = inpaint_args(files, tiny_sd_inpaint, "plain.png")
    assert main(plain) == 0
    argv = inpaint_args(files, tiny_sd_inpaint, "styled.png")
    argv += ["--lora", f"{tiny_lora}:0.7", "--embedding", f"{tiny_embedding}:tinystyle"]
    argv += [
        "--ip-adapter",
        str(tiny_ip_adapter),
        "--reference",
        str(files / "reference.png"),
        "--reference-scale",
        "0.5",
    ]
    assert main(argv) == 0
    with Image.open(files / "styled.png") as styled, Image.open(files / "plain.png") as bare:
        params = parse_parameters(styled.info["parameters"])
        assert not np.array_equal(np.asarray(styled), np.asarray(bare))
    assert params["prompt"] == f"a tinystyle apple <lora:{Path(tiny_lora).stem}:0.7>"
    assert params["IP-Adapter"] == str(tiny_ip_adapter) and params["IP-Adapter scale"] == "0.5"
    assert params["Embeddings"] == f"tinystyle={Path(tiny_embedding).stem}"
    capsys.readouterr()
    lonely = inpaint_args(files, tiny_sd_inpaint, "x.png", "--reference", str(files / "reference.png"))
    assert main(lonely) == 2
    assert "--reference needs an IP-Adapter" in capsys.readouterr().err
    missing = inpaint_args(files, tiny_sd_inpaint, "y.png", "--ip-adapter", str(tiny_ip_adapter))
    assert main(missing) == 2
    assert "The IP-Adapter needs a reference image" in capsys.readouterr().err
    assert not (files / "x.png").exists() and not (files / "y.png").exists()


def test_a_chain_recipe_takes_loras_and_a_reference_input(files, tiny_sd_inpaint, tiny_lora, tiny_ip_adapter, capsys):
    recipe = {
        "format": "inpaint-studio/chain",
        "version": 1,
        "inputs": {"image": "photo.png", "mask": "mask.png", "reference": "reference.png"},
        "defaults": {"model": str(tiny_sd_inpaint), "steps": 2, "seed": 3},
        "steps": [
            {"name": "styled", "job": {"prompt": "an apple", "loras": [[str(tiny_lora), 0.6]]}},
            {"name": "referenced", "job": {"prompt": "an apple", "ip_adapter": str(tiny_ip_adapter)}},
        ],
    }
    path = files / "recipe.json"
    path.write_text(json.dumps(recipe))
    out = files / "out"
    assert main(["chain", str(path), "-o", str(out), "-q"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["steps"][0]["job"]["loras"] == [[str(tiny_lora), 0.6]]
    assert record["steps"][1]["reference_image"] == "reference"  # the input named "reference", by default
    assert record["steps"][1]["result"]["extra"]["ip_adapter"]["scale"] == 0.6
    with Image.open(out / "01-styled.png") as first:
        assert f"<lora:{Path(tiny_lora).stem}:0.6>" in first.info["parameters"]
    # Replaying the record gives the same pixels.
    again = files / "again"
    inputs = [f"image={files / 'photo.png'}", f"mask={files / 'mask.png'}", f"reference={files / 'reference.png'}"]
    argv = ["chain", str(out / "record.json"), "-o", str(again), "-q"]
    for item in inputs:
        argv += ["--input", item]
    assert main(argv) == 0
    for name in ("01-styled.png", "02-referenced.png"):
        with Image.open(out / name) as a, Image.open(again / name) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
    bad = dict(recipe, inputs={"image": "photo.png", "mask": "mask.png"})
    path.write_text(json.dumps(bad))
    capsys.readouterr()
    assert main(["chain", str(path), "-o", str(files / "bad"), "-q"]) == 2
    assert "uses the reference image input 'reference', which the chain was not given" in capsys.readouterr().err


def test_models_lists_the_addons_with_size_and_licence(capsys):
    assert main(["models", "--addons", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    kinds = {row["kind"] for row in rows}
    assert kinds == {"lora", "ip_adapter", "upscaler"}
    assert all(row["download_gb"] > 0 and row["licence"] and row["installed"] is False for row in rows)
    assert any(row["id"] == "latent-consistency/lcm-lora-sdv1-5" for row in rows)
    assert main(["models", "--addons"]) == 0
    assert "ai-forever/Real-ESRGAN/RealESRGAN_x4.pth  (BSD-3-Clause)" in capsys.readouterr().out


def test_downloading_an_addon_shows_size_and_licence_first_and_fails_in_one_line_offline(capsys):
    code = main(["download", "latent-consistency/lcm-lora-sdv1-5"])
    captured = capsys.readouterr()
    assert captured.out.startswith("Downloading LCM-LoRA for SD 1.5 (fast mode): a 0.13 GB download, licence")
    assert code == 3 and "could not be downloaded" in captured.err and captured.err.count("\n") == 1
