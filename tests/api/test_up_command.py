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


def _start(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([NEUTRINO, "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--no-dataplane", *extra], stdout=subprocess.PIPE,
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
    proc = _start(tmp_path, port, "--auth", "noauth")
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

    proc = _start(tmp_path, port, "--auth", "noauth")
    try:
        r = requests.get(f"http://127.0.0.1:{port}/v2.0/networks/{net_id}", timeout=10)
        assert r.status_code == 200 and r.json()["network"]["name"] == "kept"
    finally:
        code, out = _stop(proc, signal.SIGTERM)
    assert code == 0, out


def test_first_start_writes_credentials_the_openstack_cli_uses(tmp_path: Path) -> None:
    """Embedded identity (the default): clouds.yaml and admin-openrc just work."""
    port = free_port()
    proc = _start(tmp_path, port)
    openstack = str(Path(sys.executable).with_name("openstack"))
    try:
        # without a token the Networking API refuses
        assert requests.get(f"http://127.0.0.1:{port}/v2.0/networks", timeout=10) \
            .status_code == 401
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        clouds = {**env, "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
                  "OS_CLOUD": "neutrino"}
        made = subprocess.run([openstack, "network", "create", "cli-net", "-f", "value",
                               "-c", "id"], env=clouds, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        openrc = dict(env)
        for line in (tmp_path / "admin-openrc").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            openrc[key] = value
        listed = subprocess.run([openstack, "network", "list", "-f", "value", "-c", "Name"],
                                env=openrc, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "cli-net" in listed.stdout.split()
        # projects and users are made with the stock commands
        for argv in (["project", "create", "demo"],
                     ["user", "create", "alice", "--password", "pw", "--project", "demo"],
                     ["role", "add", "--project", "demo", "--user", "alice", "member"]):
            done = subprocess.run([openstack, *argv], env=clouds, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        alice = {**env, "OS_AUTH_URL": openrc["OS_AUTH_URL"], "OS_USERNAME": "alice",
                 "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "demo",
                 "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                 "OS_IDENTITY_API_VERSION": "3"}
        theirs = subprocess.run([openstack, "network", "list", "-f", "value", "-c", "Name"],
                                env=alice, capture_output=True, text=True, timeout=60)
        assert theirs.returncode == 0, theirs.stderr
        assert "cli-net" not in theirs.stdout.split()  # the admin project's network
    finally:
        _stop(proc, signal.SIGINT)


def _modes(data_dir: Path, *names: str) -> dict[str, str]:
    return {name: oct((data_dir / name).stat().st_mode & 0o777) for name in names}


SQLITE = ("neutrino.sqlite", "neutrino.sqlite-wal", "neutrino.sqlite-shm")


def _admin_token(data_dir: Path, port: int) -> str:
    clouds = (data_dir / "clouds.yaml").read_text()
    password = clouds.split("password: ")[1].split()[0]
    r = requests.post(f"http://127.0.0.1:{port}/identity/v3/auth/tokens", timeout=30,
                      json={"auth": {"identity": {"methods": ["password"], "password": {
                          "user": {"name": "admin", "domain": {"name": "Default"},
                                   "password": password}}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def test_up_keeps_the_data_directory_private(tmp_path: Path) -> None:
    """The database (every project's data, the password hashes), its -wal and -shm and
    the admin's credentials are the owner's only; so is the directory."""
    data = tmp_path / "data"
    port = free_port()
    proc = _start(data, port)
    try:
        token = _admin_token(data, port)
        r = requests.post(f"http://127.0.0.1:{port}/v2.0/networks", timeout=10,
                          headers={"X-Auth-Token": token}, json={"network": {"name": "n"}})
        assert r.status_code == 201
        assert _modes(data, ".") == {".": "0o700"}
        assert _modes(data, *SQLITE, "clouds.yaml", "admin-openrc") == dict.fromkeys(
            (*SQLITE, "clouds.yaml", "admin-openrc"), "0o600")
    finally:
        _stop(proc, signal.SIGTERM)


def test_up_tightens_a_data_directory_an_older_version_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    _stop(_start(data, port), signal.SIGTERM)
    # as an older version left it: all readable by everyone
    data.chmod(0o755)
    for name in ("neutrino.sqlite", "clouds.yaml", "admin-openrc"):
        (data / name).chmod(0o644)
    for name in SQLITE[1:]:  # and side files left over from a crash
        (data / name).touch(mode=0o644)
        (data / name).chmod(0o644)
    proc = _start(data, port)
    try:
        token = _admin_token(data, port)
        assert requests.get(f"http://127.0.0.1:{port}/v2.0/networks", timeout=10,
                            headers={"X-Auth-Token": token}).status_code == 200
        assert _modes(data, ".") == {".": "0o700"}
        assert set(_modes(data, *SQLITE).values()) == {"0o600"}
        assert set(_modes(data, "clouds.yaml", "admin-openrc").values()) == {"0o600"}
    finally:
        _stop(proc, signal.SIGTERM)


def test_serve_keeps_a_sqlite_database_private(tmp_path: Path) -> None:
    """`neutrino serve` with a SQLite URL outside any data directory: the files are the
    owner's only, including the -wal and -shm that appear once it writes."""
    port = free_port()
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    db = shared / "cloud.sqlite"
    proc = subprocess.Popen([NEUTRINO, "serve", "--database-url", f"sqlite:///{db}",
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NEUTRINO_AUTH": "noauth"})
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
            time.sleep(0.1)
        assert requests.post(base + "/networks", json={"network": {"name": "n"}},
                             timeout=10).status_code == 201
        names = ("cloud.sqlite", "cloud.sqlite-wal", "cloud.sqlite-shm")
        assert _modes(shared, *names) == dict.fromkeys(names, "0o600")
        assert _modes(shared, ".") == {".": "0o755"}  # not ours to change
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
