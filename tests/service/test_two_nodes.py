"""A simulated two-node cluster (ray.cluster_utils.Cluster): a node removed in the middle of a batch, and every
item still finishes exactly once. Collected after the other service modules: it replaces their local Ray."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.imageio import load_image, load_mask
from inpaint_studio.engine.runner import Engine
from inpaint_studio.service.batch_plan import BatchReport, plan_batch
from tests.engine.helpers import job_for, pixels
from tests.service.batch_helpers import BROKEN, make_folders
from tests.service.conftest import stop_ray
from tests.service.helpers import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def two_nodes(ray_session):
    import ray
    from ray.cluster_utils import Cluster

    stop_ray()  # the other modules' local Ray
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_node_removed_mid_batch_and_every_item_finishes_exactly_once(two_nodes, tiny_sd_inpaint, tmp_path):
    import ray

    from inpaint_studio.service.batch import run_batch

    cluster, worker = two_nodes
    head = cluster.head_node.node_id
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    images, masks, good = make_folders(tmp_path, 16)
    out = tmp_path / "out"
    job = job_for(tiny_sd_inpaint, steps=12, seed=3)
    plan = plan_batch(images, masks, out)
    report = BatchReport(out, job, images, masks)
    finished = threading.Event()
    errors: list[BaseException] = []

    def batch() -> None:
        try:
            run_batch(plan, report, actors=2)
        except BaseException as exc:
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=batch)
    thread.start()
    wait_until(lambda: len(report.done) >= 3 or finished.is_set(), 300, 0.2)
    assert not finished.is_set(), "the node must be removed while the batch runs"
    wait_until(lambda: {item["node"] for item in report.done} == {head, worker.node_id}, 120, 0.2)
    cluster.remove_node(worker)  # its actor dies with whatever item it was working on
    thread.join(600)
    assert not thread.is_alive() and not errors
    report.write(complete=True)

    done = [item["file"] for item in report.done]
    assert len(done) == len(set(done))  # exactly once
    assert sorted(done) == sorted(good)
    assert sorted(item["file"] for item in report.failed) == sorted(BROKEN)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 1
    assert {item["node"] for item in report.done[-3:]} == {head}  # the rest was done on the node that stayed
    engine = Engine()
    for name in good[1:4]:  # whichever node made it, the pixels are the job's
        loaded = load_image(images / name)
        want = engine.run(job, loaded.image, load_mask(masks / name))
        assert np.array_equal(pixels(Image.open(out / name)), pixels(want.images[0]))
