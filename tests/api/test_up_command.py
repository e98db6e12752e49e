"""`neutrino up` as a user runs it: foreground, clean stop on signals, data kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import free_port

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([NEUTRINO, "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--no-dataplane"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"neutrino up exited early: {proc.stdout.read()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("neutrino up did not answer within 30 s")


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


def test_up_serves_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        r = requests.post(f"http://127.0.0.1:{port}/v2.0/networks",
                          json={"network": {"name": "kept"}}, timeout=10)
        assert r.status_code == 201
        net_id = r.json()["network"]["id"]
    finally:
        code, out = _stop(proc, signal.SIGINT)
    assert code == 0, out
    assert f"http://127.0.0.1:{port}" in out
    assert "OS_CLOUD=neutrino" in out
    clouds = (tmp_path / "clouds.yaml").read_text()
    assert f"endpoint: http://127.0.0.1:{port}" in clouds

    proc = _start(tmp_path, port)
    try:
        r = requests.get(f"http://127.0.0.1:{port}/v2.0/networks/{net_id}", timeout=10)
        assert r.status_code == 200 and r.json()["network"]["name"] == "kept"
    finally:
        code, out = _stop(proc, signal.SIGTERM)
    assert code == 0, out


def test_clouds_yaml_drives_the_openstack_cli(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
               "OS_CLOUD": "neutrino"}
        openstack = str(Path(sys.executable).with_name("openstack"))
        made = subprocess.run([openstack, "network", "create", "cli-net", "-f", "value",
                               "-c", "id"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        listed = subprocess.run([openstack, "network", "list", "-f", "value", "-c", "Name"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "cli-net" in listed.stdout.split()
    finally:
        _stop(proc, signal.SIGINT)
