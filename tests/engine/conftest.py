"""Engine tests: one torch thread.

The tiny models are far too small for intra-op parallelism to pay off, and on a loaded 2-core machine
torch's worker threads spin against other processes: one UNet call measured 40 ms with one thread and
1.6 s with two. Results do not depend on it (each test compares runs made in this same process).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
