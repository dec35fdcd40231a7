"""`inpaint-studio batch` on Ray Data (a real local Ray): broken pairs never stop it, outputs are atomic and
named like their inputs, the report says what happened, and a batch whose driver was killed resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.imageio import load_image, load_mask
from inpaint_studio.engine.runner import Engine
from inpaint_studio.service.batch_plan import output_names, plan_batch
from tests.engine.helpers import job_for, pixels
from tests.service.batch_helpers import BROKEN, files_of, make_folders, read_report
from tests.service.helpers import wait_until

pytestmark = pytest.mark.cluster


def batch_args(images: Path, masks: Path, out: Path, model: Path, address: str, *extra: str) -> list[str]:
    return [
        "batch",
        str(images),
        "--masks",
        str(masks),
        "-o",
        str(out),
        "--model",
        str(model),
        "--prompt",
        "a red apple",
        "--seed",
        "5",
        "--ray-address",
        address,
        "-q",
        *extra,
    ]


def test_a_batch_of_20_with_broken_pairs_then_a_second_run_skips_what_is_done(
    local_ray, tiny_sd_inpaint, tmp_path, capsys
):
    images, masks, good = make_folders(tmp_path, 16)
    out = tmp_path / "out"
    args = batch_args(images, masks, out, tiny_sd_inpaint, local_ray, "--steps", "2", "--actors", "2")
    assert main(args) == 2  # some items failed

    report = read_report(out)
    assert report["complete"] is True and report["counts"] == {"done": 16, "failed": 4, "skipped": 0}
    assert sorted(files_of(report, "done")) == sorted(good)
    failed = {item["file"]: item["reason"] for item in report["failed"]}
    assert sorted(failed) == sorted(BROKEN)
    for name, words in BROKEN.items():
        assert words in failed[name] and failed[name].endswith(".")  # one sentence each
    assert str(images / "truncated.png") in failed["truncated.png"]  # names the user's file, not a copy
    # Outputs are named like the inputs, in their format, and equal a local run to the bit (PNG).
    assert sorted(p.name for p in out.iterdir() if p.name != "report.json") == sorted(good)
    assert Image.open(out / "photo-00.jpg").format == "JPEG"
    loaded = load_image(images / "photo-03.png")
    mask = load_mask(masks / "photo-03.png")
    want = Engine().run(job_for(tiny_sd_inpaint, steps=2, seed=5), loaded.image, mask)
    assert np.array_equal(pixels(Image.open(out / "photo-03.png")), pixels(want.images[0]))
    assert "16 done, 4 failed, 0 skipped" in capsys.readouterr().out

    assert main(args) == 2  # resumable: the finished ones are skipped, the broken ones fail again
    again = read_report(out)
    assert again["counts"] == {"done": 0, "failed": 4, "skipped": 16}
    assert sorted(files_of(again, "skipped")) == sorted(good)


def test_a_batch_without_failures_exits_0_and_several_variants_get_numbered_outputs(
    local_ray, tiny_sd_inpaint, tmp_path
):
    images, masks, good = make_folders(tmp_path, 2)
    for name in BROKEN:
        (images / name).unlink()
    out = tmp_path / "out"
    args = batch_args(images, masks, out, tiny_sd_inpaint, local_ray, "--variants", "2", "--steps", "2")
    assert main(args) == 0
    report = read_report(out)
    assert report["counts"] == {"done": 2, "failed": 0, "skipped": 0}
    assert sorted(report["done"][0]["outputs"] + report["done"][1]["outputs"]) == sorted(
        name for image in good for name in output_names(image, 2)
    )


def test_a_batch_whose_driver_was_killed_resumes_where_it_stopped(local_ray, tiny_sd_inpaint, tmp_path):
    images, masks, good = make_folders(tmp_path, 16)
    out = tmp_path / "out"
    # Enough steps that the batch is still running when the driver is killed.
    args = batch_args(images, masks, out, tiny_sd_inpaint, local_ray, "--steps", "20", "--actors", "2")
    code = "import sys; from inpaint_studio.cli import main; raise SystemExit(main(sys.argv[1:]))"
    driver = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        finished = wait_until(lambda: [p for p in out.glob("photo-*") if not p.name.startswith(".")], 240, 0.2)
        time.sleep(1.0)
        os.kill(driver.pid, signal.SIGKILL)  # no chance to clean up or write its report
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    written = sorted(p.name for p in out.iterdir() if p.name in good)
    assert finished and 0 < len(written) < len(good), "the driver must die mid-batch for this test"
    for name in written:  # atomic: whatever exists is a whole image
        assert load_image(out / name).image.size == (64, 48)
    assert plan_batch(images, masks, out).total == 20

    assert main(args) == 2
    report = read_report(out)
    assert sorted(files_of(report, "skipped")) == written
    assert sorted(files_of(report, "done") + files_of(report, "skipped")) == sorted(good)
    assert sorted(files_of(report, "failed")) == sorted(BROKEN)
    every = files_of(report, "done") + files_of(report, "skipped") + files_of(report, "failed")
    assert len(every) == len(set(every)) == 20  # each item exactly once
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name != "report.json") == sorted(
        good
    )
