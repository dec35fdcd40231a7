"""The engine on a real Ray Serve (local Ray, 127.0.0.1) with the tiny models, through engine/remote.py.

Remote results equal local ones to the bit; the event stream equals the local engine's; cancel (explicit and
by disconnecting) stops the job on the server; two clients at once; the token, the upload limits and the
model policy refuse what they must; a replica killed mid-job is one clear failure and a retry succeeds.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.errors import BadInputError, CancelledError, ModelUnavailableError
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine import wire
from inpaint_studio.engine.chain import Chain, run_chain
from inpaint_studio.engine.events import CancelToken, JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.remote import AuthenticationError, ConnectionLostError
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels
from tests.service.helpers import TOKEN, wait_until

pytestmark = pytest.mark.cluster

SERVER_ONLY_EXTRA = {"server", "device_name"}


@pytest.fixture(scope="module")
def local_engine():
    engine = Engine()
    yield engine
    engine.release()


@pytest.fixture
def remote(server):
    engine = server.engine()
    yield engine
    engine.close()


def test_a_remote_result_equals_the_local_one_and_the_events_match(remote, local_engine, tiny_sd_inpaint):
    image, mask = photo(80, 64, seed=3), box_mask(80, 64, (20, 16, 60, 48))
    job = job_for(tiny_sd_inpaint, steps=3, variants=2)
    remote_events, local_events = [], []
    result = remote.run(job, image, mask, on_event=remote_events.append, job_id=7, preview_every=1)
    local = local_engine.run(job, image, mask, on_event=local_events.append, job_id=7, preview_every=1)

    assert [type(e) for e in remote_events] == [type(e) for e in local_events]
    assert [type(e) for e in remote_events][:2] == [JobStarted, JobProgress]
    for got, want in zip(remote_events, local_events):
        assert got.job_id == want.job_id == 7
        if isinstance(want, JobStarted):
            assert (got.job, got.total_steps) == (want.job, want.total_steps)
        if isinstance(want, JobProgress):
            assert (got.step, got.total, got.variant) == (want.step, want.total, want.variant)
            assert np.array_equal(pixels(got.preview), pixels(want.preview.convert("RGB")))
    assert isinstance(remote_events[-1], JobFinished) and remote_events[-1].result is result
    assert len(result.images) == 2
    for got, want in zip(result.images, local.images):
        assert got.mode == want.mode and np.array_equal(pixels(got), pixels(want))  # bit-identical
    assert (result.job, result.seeds, result.region, result.model) == (
        local.job,
        local.seeds,
        local.region,
        local.model,
    )
    assert {k: v for k, v in result.extra.items() if k not in SERVER_ONLY_EXTRA} == {
        k: v for k, v in local.extra.items() if k not in SERVER_ONLY_EXTRA
    }
    # The history records which server and device made it.
    record = GenerationRecord.from_dict(json.loads(json.dumps(result.record(1).to_dict())))
    assert record.device == "cpu" and record.device_name.endswith(
        f"on {remote.host}, node {record.extra['server']['node']}"
    )
    assert record.extra["server"]["url"] == remote.url and record.extra["server"]["replica"]
    assert record.job == local.record(1).job


def test_a_large_photo_comes_back_bit_identical(remote, local_engine, tiny_sd_inpaint):
    # As large as the test server's limits allow (0.5 MP, 2 MB); a small edit in it.
    image, mask = photo(800, 600, seed=4), box_mask(800, 600, (300, 200, 380, 280))
    for job in (job_for(tiny_sd_inpaint, steps=2, padding_px=16), job_for("classic", seed=2)):
        got, want = remote.run(job, image, mask), local_engine.run(job, image, mask)
        assert got.region == want.region and got.region != (0, 0, 800, 600)  # only the box travelled back
        assert np.array_equal(pixels(got.images[0]), pixels(want.images[0]))


def test_transparency_and_the_classical_fill_travel_unchanged(remote, local_engine):
    rgba = np.dstack([pixels(photo(64, 48, seed=1)), np.full((48, 64), 255, np.uint8)])
    rgba[:8, :8, 3] = 0
    opaque = np.dstack([pixels(photo(64, 48, seed=2)), np.full((48, 64), 255, np.uint8)])  # opaque RGBA
    mask = box_mask(64, 48, (10, 10, 40, 30))
    job = job_for("classic", seed=1)
    for image in (rgba, opaque):
        got, want = remote.run(job, image, mask), local_engine.run(job, image, mask)
        assert got.images[0].mode == want.images[0].mode == "RGBA"
        assert np.array_equal(pixels(got.images[0]), pixels(want.images[0]))


def test_a_chain_runs_remotely_with_the_latent_hand_off(remote, local_engine, tiny_sd):
    steps = [
        {"job": {"task": "text2img", "prompt": "a house", "width": 64, "height": 64, "seed": 1}},
        {"job": {"task": "img2img", "prompt": "oil painting", "strength": 0.5, "steps": 4, "seed": 2}},
    ]
    chain = Chain.from_dict(
        {
            "format": "inpaint-studio/chain",
            "version": 1,
            "defaults": {"model": str(tiny_sd), "steps": 2},
            "steps": steps,
        }
    )
    there, here = run_chain(remote, chain, {}), run_chain(local_engine, chain, {})
    assert there.steps[1].extra["latent_input"] is True  # the hand-off went back to the server and was used
    for got, want in zip(there.images, here.images):
        assert np.array_equal(pixels(got), pixels(want))


def test_two_clients_at_once_both_get_their_own_result(server, local_engine, tiny_sd_inpaint):
    image, mask = photo(64, 64, seed=5), box_mask(64, 64, (16, 16, 48, 48))
    jobs = [job_for(tiny_sd_inpaint, steps=4, seed=seed) for seed in (21, 22)]
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def client(index: int) -> None:
        engine = server.engine()
        try:
            results[index] = engine.run(jobs[index], image, mask, job_id=index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and sorted(results) == [0, 1]
    for index, job in enumerate(jobs):
        want = local_engine.run(job, image, mask)
        assert np.array_equal(pixels(results[index].images[0]), pixels(want.images[0]))


def _long_job(model, **kw):
    return job_for(model, steps=400, **kw)


def test_cancel_stops_the_job_on_the_server(remote, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    cancel, events = CancelToken(), []

    def on_event(event):
        events.append(event)
        if isinstance(event, JobProgress) and event.step == 2:
            cancel.cancel()

    started = time.monotonic()
    with pytest.raises(CancelledError):
        remote.run(_long_job(tiny_sd_inpaint), image, mask, on_event=on_event, cancel=cancel)
    assert isinstance(events[-1], JobCancelled) and events[-1].message == JobCancelled(0).message
    assert max(e.step for e in events if isinstance(e, JobProgress)) < 100  # it stopped, it did not finish
    assert time.monotonic() - started < 60
    assert wait_until(lambda: remote.health()["running"] == 0, 30)


def test_a_job_cancelled_while_it_waits_for_the_device_stops_at_once(server, remote, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    first_cancel, started = CancelToken(), threading.Event()
    first_error: list[BaseException] = []

    def first() -> None:
        engine = server.engine()
        try:
            engine.run(
                _long_job(tiny_sd_inpaint),
                image,
                mask,
                cancel=first_cancel,
                on_event=lambda e: started.set() if isinstance(e, JobProgress) else None,
            )
        except BaseException as exc:
            first_error.append(exc)
        finally:
            engine.close()

    runner = threading.Thread(target=first)
    runner.start()
    try:
        assert started.wait(60)
        waiting, events = CancelToken(), []
        timer = threading.Timer(2.0, waiting.cancel)  # while the first job holds the replica's device
        timer.start()
        began = time.monotonic()
        with pytest.raises(CancelledError):
            remote.run(job_for(tiny_sd_inpaint, steps=2), image, mask, cancel=waiting, on_event=events.append)
        assert time.monotonic() - began < 12  # not after the first job's 400 steps
        assert [type(e) for e in events] == [JobCancelled]
        assert remote.health()["running"] == 1  # the first job goes on
    finally:
        first_cancel.cancel()
        runner.join(60)
    assert isinstance(first_error[0], CancelledError)


def test_a_client_that_goes_away_cancels_its_job(server, remote, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    job = _long_job(tiny_sd_inpaint)
    request = wire.request_json(job, {"image": image, "mask": Image.fromarray(mask)}, job_id=1, preview_every=0)
    files = [
        ("request", (None, json.dumps(request).encode(), "application/json")),
        ("image", ("image.png", wire.png_bytes(image), "image/png")),
        ("mask", ("mask.png", wire.png_bytes(Image.fromarray(mask)), "image/png")),
    ]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    kinds = []
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=60) as client,
        client.stream("POST", wire.JOBS_PATH, files=files) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            kinds.append(json.loads(line)["event"])
            if kinds[-1] == "progress":
                break  # and close the connection mid-job
    assert kinds[:2] == ["accepted", "started"]
    # 400 steps take far longer than this: the server stopped the job when the client left.
    assert wait_until(lambda: remote.health()["running"] == 0, 20)
    quick = remote.run(job_for(tiny_sd_inpaint, steps=2), image, mask)
    assert quick.images[0].size == (64, 64)


def test_a_missing_or_wrong_token_is_refused(server, tiny_sd_inpaint):
    image, mask = photo(32, 32), box_mask(32, 32, (8, 8, 24, 24))
    for token in (None, "wrong-token-wrong-token", TOKEN + "x"):
        engine = server.engine(token=token)
        with pytest.raises(AuthenticationError, match="token"):
            engine.health()
        events = []
        with pytest.raises(AuthenticationError) as refused:
            engine.run(job_for("classic"), image, mask, on_event=events.append)
        assert [type(e) for e in events] == [JobFailed]  # refused before anything ran, and said so
        assert events[0].error is refused.value and "token" in events[0].message
        engine.close()
    response = httpx.get(server.url + wire.MODELS_PATH, headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status_code == 401 and response.json()["error"] == "BadInputError"


def test_oversized_and_broken_uploads_are_refused(server, remote):
    # Noise does not compress: about 3 MB of PNG, over the test server's 2 MB.
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), np.uint8)
    mask = np.zeros((1000, 1000), np.uint8)
    mask[10:20, 10:20] = 255
    with pytest.raises(BadInputError, match="larger than the 2 MB"):
        remote.run(job_for("classic"), noise, mask)
    # Small file, many pixels: 800x800 = 640,000 pixels, over the server's 500,000.
    flat = np.zeros((800, 800, 3), np.uint8)
    with pytest.raises(BadInputError, match="640,000 pixels"):
        remote.run(job_for("classic"), flat, np.zeros((800, 800), np.uint8))

    def post(image_bytes: bytes, name: str = "image") -> httpx.Response:
        request = {"api": 1, "job": {"model": "classic"}, "job_id": 0, "preview_every": 0, "images": {}}
        files = [
            ("request", (None, json.dumps(request).encode(), "application/json")),
            (name, ("x.png", image_bytes, "image/png")),
        ]
        return httpx.post(server.url + wire.JOBS_PATH, files=files, headers={"Authorization": f"Bearer {TOKEN}"})

    broken = post(wire.png_bytes(Image.new("RGB", (32, 32)))[:60])
    assert broken.status_code == 400
    assert broken.json()["error"] == "BadInputError" and "The uploaded image is damaged" in broken.json()["message"]
    assert "/tmp" not in broken.json()["message"]  # names the upload, not a file on the server
    not_an_image = post(b"%!PS-Adobe-3.0 EPSF-3.0\n")  # never handed to Ghostscript
    assert not_an_image.status_code == 400 and "uploaded image" in not_an_image.json()["message"]
    pickled = post(b"\x80\x04\x95", name="payload")  # an unknown part is refused, never unpickled
    assert pickled.status_code == 400 and "does not take the input(s) payload" in pickled.json()["message"]
    garbage = httpx.post(
        server.url + wire.JOBS_PATH, content=b"not multipart", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert garbage.status_code == 400


def test_models_are_limited_to_what_the_server_has(server, remote, tiny_sd_inpaint, tmp_path):
    ids = [row["id"] for row in remote.models()]
    assert ids[0] == "classic" and str(tiny_sd_inpaint) in ids
    image, mask = photo(32, 32), box_mask(32, 32, (8, 8, 24, 24))
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    for reference, sentence in (
        (str(elsewhere), "only runs the models it lists"),
        ("/etc/passwd", "only runs the models it lists"),
        ("someone/not-installed", "does not have someone/not-installed and may not download"),
    ):
        events = []
        with pytest.raises(ModelUnavailableError, match=sentence):
            remote.run(job_for(reference, steps=2), image, mask, on_event=events.append)
        assert [type(e) for e in events] == [JobFailed] and isinstance(events[0].error, ModelUnavailableError)
    remote.run(job_for(tiny_sd_inpaint, steps=2), image, mask)
    health = remote.health()
    assert health["device"] == "cpu" and health["api"] == 1 and str(tiny_sd_inpaint) in health["loaded_models"]


def test_the_cli_runs_a_job_on_the_server(server, tiny_sd_inpaint, tmp_path, monkeypatch, local_engine):
    from inpaint_studio.cli import main

    image, mask = photo(64, 48, seed=9), box_mask(64, 48, (16, 8, 48, 40))
    image.save(tmp_path / "in.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    args = ["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.png")]
    args += ["--model", str(tiny_sd_inpaint), "--steps", "2", "--seed", "4", "--prompt", "a red apple", "-q"]
    monkeypatch.delenv("INPAINT_STUDIO_TOKEN", raising=False)
    assert main([*args, "--server", server.url]) == BadInputError.exit_code  # no token
    monkeypatch.setenv("INPAINT_STUDIO_TOKEN", TOKEN)
    assert main([*args, "--server", server.url]) == 0
    want = local_engine.run(job_for(tiny_sd_inpaint, steps=2, seed=4), image, mask)
    assert np.array_equal(pixels(Image.open(tmp_path / "out.png")), pixels(want.images[0]))
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("INPAINT_STUDIO_TOKEN")
    assert main(["models", "--server", server.url, "--token-file", str(token_file), "--json"]) == 0


def test_each_replica_keeps_an_lru_of_loaded_models(remote, tiny_sd_inpaint, tiny_sd):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    inpaint, text2img = (
        job_for(tiny_sd_inpaint, steps=2),
        job_for(tiny_sd, steps=2, task="text2img", width=64, height=64),
    )
    remote.run(inpaint, image, mask)
    remote.run(text2img)
    assert remote.health()["loaded_models"] == [str(tiny_sd_inpaint), str(tiny_sd)]
    remote.run(job_for("classic"), image, mask)  # a third model: the least recently used one is released
    assert remote.health()["loaded_models"] == [str(tiny_sd), "classic"]
    remote.run(inpaint, image, mask)
    assert remote.health()["loaded_models"] == ["classic", str(tiny_sd_inpaint)]


def test_a_replica_killed_mid_job_is_one_clear_failure_and_a_retry_succeeds(remote, tiny_sd_inpaint):
    import ray

    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    actor = remote.health()["actor"]
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, JobProgress) and event.step == 2:
            ray.kill(ray.get_actor(actor, namespace="serve"), no_restart=True)

    with pytest.raises(ConnectionLostError) as lost:
        remote.run(_long_job(tiny_sd_inpaint), image, mask, on_event=on_event)
    assert "was lost during the job" in str(lost.value) and "nothing was changed" in str(lost.value)
    assert isinstance(events[-1], JobFailed) and events[-1].error is lost.value
    # Ray Serve replaces the replica; the same job, queued again, succeeds.
    wait_until(lambda: remote.health()["actor"] != actor, 120, 1.0)
    result = remote.run(job_for(tiny_sd_inpaint, steps=2), image, mask)
    assert result.images[0].size == (64, 64)
