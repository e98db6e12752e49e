"""`neutrino serve` as an operator runs it: a config file, PostgreSQL, several workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import free_port

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


def test_serve_with_workers_on_postgresql(tmp_path: Path, database_factory) -> None:
    url = database_factory("postgresql")
    port = free_port()
    cfg = tmp_path / "neutrino.toml"
    cfg.write_text(f'database_url = "{url}"\nport = {port}\nworkers = 2\nauth = "noauth"\n'
                   f'[quotas]\nnetwork = 3\n')
    proc = subprocess.Popen([NEUTRINO, "serve", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}/v2.0"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/networks", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.2)
        statuses = [requests.post(base + "/networks", json={"network": {"name": f"n{i}"}},
                                  timeout=10).status_code for i in range(4)]
        # the quota from the config file holds across both worker processes
        assert statuses == [201, 201, 201, 409]
        assert len(requests.get(base + "/networks", timeout=10).json()["networks"]) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
