"""The service's parts without Ray: the wire format, the token, upload limits, the model policy, the settings,
the batch plan, the client's sentences, and the rule that the desktop install never imports Ray."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.errors import BadInputError, CancelledError, EmptyMaskError, EngineError, ModelUnavailableError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine import wire
from inpaint_studio.engine.events import InpaintResult, JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.remote import (
    AuthenticationError,
    ConnectionLostError,
    RemoteEngine,
    normalise_url,
    read_token_file,
    token_from,
)
from inpaint_studio.service import auth
from inpaint_studio.service.batch_plan import BatchReport, output_names, plan_batch
from inpaint_studio.service.config import ServiceConfig
from inpaint_studio.service.limits import UploadLimits, load_upload
from inpaint_studio.service.policy import ModelPolicy
from tests.engine.helpers import box_mask, job_for, photo, pixels
from tests.service.batch_helpers import BROKEN, make_folders

# ---- the wire format --------------------------------------------------------------------------------------


def test_events_travel_as_json_lines_and_come_back_equal():
    job = job_for("classic", seed=3)
    image = Image.fromarray(np.dstack([pixels(photo(32, 24)), np.full((24, 32), 200, np.uint8)]))
    result = InpaintResult([image], job, [3], {"reference": "classic"}, "cpu", 0.5, (1, 2, 30, 20), {"x": [1, 2]})
    events = [
        JobStarted(4, job, 10),
        JobProgress(4, 3, 10, 0, photo(16, 16)),
        JobProgress(4, 4, 10, 1, None),
        JobFinished(4, result),
        JobCancelled(4),
        JobFailed(4, "The mask is empty; paint one.", EmptyMaskError("The mask is empty; paint one.")),
    ]
    back = [wire.event_from_json(json.loads(wire.line(wire.event_json(e)))) for e in events]
    assert back[0] == events[0] and back[2] == events[2] and back[4] == events[4]
    assert pixels(back[1].preview).tobytes() == pixels(events[1].preview).tobytes()
    got = back[3].result
    assert got.images[0].mode == "RGBA" and np.array_equal(pixels(got.images[0]), pixels(image))
    assert (got.job, got.seeds, got.region, got.extra) == (job, [3], (1, 2, 30, 20), {"x": [1, 2]})
    assert type(back[5].error) is EmptyMaskError and back[5].message == events[5].message
    data = wire.event_json(events[3])
    assert data["result"]["records"][0]["job"]["seed"] == 3  # the record JSON rides along for other clients


def test_a_result_on_a_large_photo_travels_as_its_changed_area_only():
    base = photo(400, 300, seed=2)
    changed = base.copy()
    changed.paste(photo(60, 40, seed=9), (100, 80))
    job = job_for("classic", seed=1)
    result = InpaintResult([changed], job, [1], {}, "cpu", 0.1, (90, 70, 170, 130))
    data = wire.event_json(JobFinished(0, result), base=base)
    sent = data["result"]["images"][0]
    assert sent["box"] == [90, 70, 170, 130] and len(json.dumps(data)) < len(
        json.dumps(wire.event_json(JobFinished(0, result)))
    )
    back = wire.event_from_json(json.loads(wire.line(data)), base=base)
    assert np.array_equal(pixels(back.result.images[0]), pixels(changed))
    with pytest.raises(BadInputError):
        wire.event_from_json(json.loads(wire.line(data)))  # a client that did not send the base
    outside = changed.copy()
    outside.putpixel((0, 0), (1, 2, 3))  # a change outside the box: the whole image travels
    data = wire.event_json(JobFinished(0, dataclasses.replace(result, images=[outside])), base=base)
    assert isinstance(data["result"]["images"][0], str)


def test_errors_travel_as_their_nearest_known_class():
    class Special(ModelUnavailableError):
        pass

    assert wire.error_json(Special("gone.")) == {"error": "ModelUnavailableError", "message": "gone."}
    assert type(wire.failure({"error": "CancelledError", "message": "Stopped."})) is CancelledError
    assert type(wire.failure({"error": "os.system", "message": "x."})) is EngineError  # never looked up


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (json.dumps({"api": 99, "job": {}}).encode(), "API version 99"),
        (json.dumps({"api": 1, "job": {"steps": "many"}}).encode(), "'steps'"),
        (json.dumps({"api": 1, "job": {}, "job_id": True}).encode(), "whole numbers"),
        (json.dumps({"api": 1, "job": {}, "images": {"image": {"mode": "CMYK"}}}).encode(), "mode 'CMYK'"),
        (json.dumps({"api": 1, "job": {"nope": 1}}).encode(), "Unknown job setting(s): nope"),
    ],
)
def test_a_bad_request_is_one_sentence(data, words):
    with pytest.raises(BadInputError, match=None) as error:
        wire.read_request(data)
    assert words in str(error.value)


def test_a_request_carries_new_job_fields_and_images_generically():
    job = InpaintJob(prompt="a cat", seed=1)
    images = {"image": photo(8, 8), "mask": Image.new("L", (8, 8)), "reference_image": photo(8, 8)}
    data = wire.request_json(job, images, job_id=3, preview_every=2)
    parsed = wire.read_request(json.dumps(data).encode())
    assert parsed.job == job and parsed.modes == {"image": "RGB", "mask": "L", "reference_image": "RGB"}
    assert wire.is_mask_name("mask") and wire.is_mask_name("outpaint_mask") and not wire.is_mask_name("image")


# ---- token and listening ----------------------------------------------------------------------------------


def test_the_token_is_compared_by_digest():
    digest = auth.digest("s3cret-token-of-some-length")
    assert auth.authorized("Bearer s3cret-token-of-some-length", digest)
    assert auth.authorized("bearer   s3cret-token-of-some-length ", digest)
    for header in (
        None,
        "",
        "Bearer",
        "Bearer wrong",
        "Basic s3cret-token-of-some-length",
        "s3cret-token-of-some-length",
    ):
        assert not auth.authorized(header, digest)
    assert auth.authorized(None, None)  # no token configured: loopback only (check_listen)
    with pytest.raises(BadInputError, match="at least 16"):
        auth.check_token_strength("short")


def test_listening_beyond_this_computer_needs_a_token():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        auth.check_listen(host, None)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(BadInputError, match="needs a token"):
            auth.check_listen(host, None)
        auth.check_listen(host, "a-token-of-enough-length")


def test_serve_refuses_an_open_address_without_a_token_before_starting_anything(monkeypatch, capsys):
    monkeypatch.delenv("INPAINT_STUDIO_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "needs a token" in err and err.count("\n") == 1


def test_tokens_come_from_a_file_or_the_environment(tmp_path, monkeypatch):
    file = tmp_path / "token"
    file.write_text("\n  abc-token  \nsecond line\n")
    assert read_token_file(file) == "abc-token" and token_from(str(file)) == "abc-token"
    monkeypatch.setenv("INPAINT_STUDIO_TOKEN", " env-token ")
    assert token_from(None) == "env-token"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(BadInputError, match="is empty"):
        read_token_file(tmp_path / "empty")
    with pytest.raises(BadInputError, match="cannot be read"):
        read_token_file(tmp_path / "missing")


# ---- uploads ----------------------------------------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    return wire.png_bytes(image)


def test_uploads_use_the_local_loaders_and_the_server_limits():
    limits = UploadLimits(max_bytes=10_000_000, max_pixels=10_000)
    rgba = Image.new("RGBA", (50, 40), (10, 20, 30, 255))
    assert load_upload("image", png(rgba), limits).mode == "RGB"  # an opaque alpha is dropped, as for files
    assert load_upload("image", png(rgba), limits, mode="RGBA").mode == "RGBA"  # ... unless the client had it
    mask = load_upload("mask", png(Image.new("RGB", (50, 40), "white")), limits)
    assert mask.mode == "L" and np.asarray(mask).min() == 255
    with pytest.raises(BadInputError, match="has 200x100 = 20,000 pixels, more than the 10,000"):
        load_upload("image", png(Image.new("RGB", (200, 100))), limits)
    with pytest.raises(BadInputError) as damaged:
        load_upload("image", png(rgba)[:50], limits)
    assert str(damaged.value).startswith("The uploaded image") and "inpaint-upload" not in str(damaged.value)
    with pytest.raises(BadInputError, match="The uploaded control_image is empty"):
        load_upload("control_image", b"", limits)
    with pytest.raises(BadInputError, match="at most 250 megapixels"):
        UploadLimits(max_pixels=10**9)


# ---- models -----------------------------------------------------------------------------------------------


def test_a_job_may_only_name_the_servers_models(tiny_sd_inpaint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    policy = ModelPolicy([str(tiny_sd_inpaint)], allow_download=False, user_models=False)
    policy.check_job(job_for(tiny_sd_inpaint))
    policy.check_job(job_for("classic:telea"))
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    for reference, words in (
        (str(tmp_path), "only runs the models it lists"),
        ("../../etc", "only runs the models it lists"),
        ("model.safetensors", "only runs the models it lists"),
        ("old.ckpt", "only runs the models it lists"),
        ("owner/name", "only runs the models it lists"),  # a relative folder on the server, not a hub id
        ("someone/missing", "may not download models"),
    ):
        with pytest.raises(ModelUnavailableError, match=words):
            policy.check(reference)
    with pytest.raises(ModelUnavailableError, match="ControlNet|only runs"):
        policy.check_job(job_for(tiny_sd_inpaint, controlnet="/srv/cn"))
    pickled = tmp_path / "weights.ckpt"
    pickled.write_bytes(b"x")
    assert str(pickled) not in ModelPolicy([str(pickled)], user_models=False).local_models()  # never pickles
    assert ModelPolicy([], allow_download=True, user_models=False).check("someone/missing") is None
    rows = policy.rows()
    assert [row["id"] for row in rows] == ["classic", str(tiny_sd_inpaint)] and all(r["available"] for r in rows)
    assert any(row["source"] == "catalog" for row in ModelPolicy(allow_download=True, user_models=False).rows())


# ---- settings ---------------------------------------------------------------------------------------------


def test_scaling_settings_become_ray_serve_options():
    fixed = ServiceConfig(replicas=2, gpus_per_replica=0.5).deployment_options()
    assert fixed["num_replicas"] == 2 and fixed["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.5}
    scaled = ServiceConfig(replicas=1, max_replicas=4).deployment_options()
    assert "num_replicas" not in scaled
    assert scaled["autoscaling_config"]["min_replicas"] == 1 and scaled["autoscaling_config"]["max_replicas"] == 4
    assert ServiceConfig.from_dict(ServiceConfig(models=("a",)).to_dict()) == ServiceConfig(models=("a",))
    with pytest.raises(BadInputError, match="below --replicas"):
        ServiceConfig(replicas=3, max_replicas=2)
    with pytest.raises(BadInputError, match="Unknown service setting"):
        ServiceConfig.from_dict({"replica": 2})


# ---- the batch plan ---------------------------------------------------------------------------------------


def test_a_batch_plan_pairs_by_name_and_skips_what_is_done(tmp_path):
    images, masks, good = make_folders(tmp_path, 3)
    (images / "notes.txt").write_text("not an image")
    (images / ".hidden.png").write_bytes(b"")
    Image.new("L", (64, 48)).save(masks / "photo-01.jpg")  # a second mask for photo-01, but one PNG decides
    Image.new("L", (64, 48)).save(masks / "no-mask-2.png")
    out = tmp_path / "out"
    plan = plan_batch(images, masks, out)
    assert sorted(p.name for p in plan.todo) == sorted([*good, *(n for n in BROKEN if n != "no-mask.png")])
    assert [f["file"] for f in plan.failed] == ["no-mask.png"]
    assert plan.total == len(good) + len(BROKEN)
    assert next(p for p in plan.todo if p.name == "photo-01.png").mask == masks / "photo-01.png"
    (out / "photo-00.jpg").write_bytes(b"done")
    assert [s["file"] for s in plan_batch(images, masks, out).skipped] == ["photo-00.jpg"]
    assert output_names("a.gif", 1) == ["a.png"] and output_names("b.JPG", 2) == ["b-1.JPG", "b-2.JPG"]
    report = BatchReport(out, InpaintJob(), images, masks, failed=[{"file": "x", "reason": "Broken."}])
    data = json.loads(report.write(complete=True).read_text())
    assert data["complete"] and data["counts"] == {"done": 0, "failed": 1, "skipped": 0} and report.exit_code == 2
    with pytest.raises(BadInputError, match="does not exist"):
        plan_batch(tmp_path / "nope", masks, out)


# ---- the client -------------------------------------------------------------------------------------------


def client(handler) -> RemoteEngine:
    return RemoteEngine("http://studio-box:8000", "tok", transport=httpx.MockTransport(handler))


def test_the_client_turns_every_kind_of_trouble_into_one_sentence():
    assert normalise_url("gpu-box:8000/") == "http://gpu-box:8000"
    with pytest.raises(BadInputError, match="not an http"):
        normalise_url("ftp://x")
    image, mask = photo(16, 16), box_mask(16, 16, (2, 2, 8, 8))
    cases = [
        (
            lambda r: httpx.Response(401, json={"error": "BadInputError", "message": "Wrong token."}),
            AuthenticationError,
        ),
        (lambda r: httpx.Response(404, text="<html>"), EngineError),
        (lambda r: httpx.Response(413, text="too big"), BadInputError),
        (lambda r: httpx.Response(200, text="<html>hello</html>"), EngineError),
        (lambda r: httpx.Response(502, text="bad gateway"), EngineError),
    ]
    for handler, error in cases:
        events = []
        with pytest.raises(error) as raised:
            client(handler).run(job_for("classic"), image, mask, on_event=events.append)
        assert str(raised.value).endswith(".")
        assert [type(e) for e in events] == [JobFailed] and events[0].error is raised.value  # as Engine.run does

    def failing(request):  # a failure the server reports in the stream keeps its class
        failed = JobFailed(0, "The mask is empty; paint one.", EmptyMaskError("The mask is empty; paint one."))
        lines = wire.line({"event": "accepted", "job": "j0"}) + wire.line(wire.event_json(failed))
        return httpx.Response(200, headers={"content-type": wire.NDJSON}, content=lines)

    events = []
    with pytest.raises(EmptyMaskError, match="The mask is empty"):
        client(failing).run(job_for("classic"), image, mask, on_event=events.append)
    assert [type(e) for e in events] == [JobFailed]

    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    events = []
    with pytest.raises(ConnectionLostError, match="Cannot reach the server at http://studio-box:8000"):
        client(refuse).run(job_for("classic"), image, mask, on_event=events.append)
    assert [type(e) for e in events] == [JobFailed]

    def half(request):  # the stream stops before the job's outcome
        lines = wire.line({"event": "accepted", "job": "j1"}) + wire.line(
            wire.event_json(JobStarted(0, job_for("classic"), 1))
        )
        return httpx.Response(200, headers={"content-type": wire.NDJSON}, content=lines)

    events = []
    with pytest.raises(ConnectionLostError, match="was lost during the job"):
        client(half).run(job_for("classic"), image, mask, on_event=events.append)
    assert [type(e) for e in events] == [JobStarted, JobFailed]


def test_the_cli_keeps_download_permissions_on_the_server(monkeypatch, tmp_path, capsys):
    args = ["inpaint", "x.png", "--mask", "m.png", "-o", str(tmp_path / "o.png"), "--server", "http://h:1"]
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    Image.new("L", (8, 8)).save(tmp_path / "m.png")
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--download"]) == 2
    assert "--download applies to this computer" in capsys.readouterr().err
    assert main(["models", "--server", "http://h:1", "--add", "x"]) == 2


# ---- no Ray in the desktop install ------------------------------------------------------------------------


def test_the_studio_and_the_usual_commands_never_import_ray(tmp_path):
    code = textwrap.dedent(
        """
        import sys, contextlib, io
        import inpaint_studio.ui.app, inpaint_studio.ui.window.main_window, inpaint_studio.engine.remote
        from inpaint_studio.cli import main
        for args in (["models", "--json"], ["inpaint", "--help"], ["serve", "--help"], ["batch", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main(args)
        print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_service_modules_without_ray_do_not_import_it():
    modules = "auth, batch_plan, config, limits, policy"
    code = f"import sys; from inpaint_studio.service import {modules}; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_work_the_service_does_not_offer_is_one_sentence_on_a_server_engine():
    """Upscaling and a removal pre-fill run on this computer only: with Settings > Engine > Server they say so."""
    from inpaint_studio.engine.prefill import prefill
    from inpaint_studio.engine.upscale import UpscaleJob

    engine = client(lambda request: httpx.Response(500))
    with pytest.raises(BadInputError, match="Upscaling runs on this computer, not on the server studio-box:8000"):
        engine.upscale(UpscaleJob(model="x/y.safetensors", scale=2), photo(16, 16))
    with pytest.raises(BadInputError, match="The pre-fill 'lama' runs on this computer's engine, not on a server"):
        prefill(photo(16, 16), box_mask(16, 16, (2, 2, 8, 8)), "lama", engine=engine)
