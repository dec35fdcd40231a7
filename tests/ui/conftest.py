"""UI test fixtures: one Engine shared by every worker of the session, so each model loads once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_engine():
    """A real Engine; workers get it through `engine_factory` and build it in their own thread."""
    from inpaint_studio.engine.runner import Engine

    engine = Engine()
    yield engine
    engine.release()
