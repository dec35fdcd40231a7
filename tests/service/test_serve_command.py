"""`inpaint-studio serve` as a process: its own private Ray, the URL printed when ready, jobs served, and a
clean stop on SIGTERM (the replicas and its Ray go with it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.engine.helpers import box_mask, job_for, photo
from tests.service.helpers import free_port

pytestmark = pytest.mark.cluster


def test_serve_prints_its_url_serves_and_stops_cleanly_on_sigterm(tiny_sd_inpaint, tmp_path):
    from inpaint_studio.engine.remote import RemoteEngine

    port = free_port()
    code = "import sys; from inpaint_studio.cli import main; raise SystemExit(main(sys.argv[1:]))"
    args = ["serve", "--port", str(port), "--model", str(tiny_sd_inpaint), "--cpus-per-replica", "0"]
    env = {**os.environ, "RAY_ADDRESS": ""}  # a private Ray, not the test session's
    env.pop("INPAINT_STUDIO_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = ""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and "ready at" not in line:
            line = server.stdout.readline()
            assert line or server.poll() is None, server.stderr.read()[-2000:]
        assert f"ready at http://localhost:{port}" in line and "no token: this computer only" in line
        engine = RemoteEngine(f"http://127.0.0.1:{port}")
        result = engine.run(job_for(tiny_sd_inpaint, steps=2), photo(48, 48), box_mask(48, 48, (8, 8, 40, 40)))
        assert result.images[0].size == (48, 48)
        engine.close()
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(120) == 0
        assert time.monotonic() - started < 120
        assert "the engine service stopped" in server.stderr.read()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # nothing listens any more
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
