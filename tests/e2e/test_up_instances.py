"""`neutrino up` with its data plane, and `neutrino instance` as a user runs them.

The agent's "hypervisor" is a test namespace (``NEUTRINO_AGENT_NETNS``), so nothing
changes in the host's own namespace; instances are ``nt-inst-<name>`` namespaces.
Whatever happens, every process, namespace and link made here is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from neutrino import names
from neutrino.linux import devices, namespaces
from tests import netns_helpers
from tests.conftest import free_port

BIN = Path(sys.executable).parent


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: runs the data plane")
    for tool in ("ip", "dnsmasq", "busybox", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: not installed")


@dataclass
class Up:
    env: dict[str, str]
    port: int
    data: Path
    hostns: str
    proc: subprocess.Popen | None = None
    #: this run's instances are named ``e2e<tag>…`` (what its cleanup removes)
    tag: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([str(BIN / "neutrino"), "up", "--port", str(self.port)],
                                     env=self.env, cwd=self.data.parent,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert self.proc.poll() is None, self.proc.stdout.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        raise AssertionError("neutrino up did not answer")

    def stop(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        return out

    def neutrino(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(BIN / "neutrino"), *args], env=self.env, cwd=self.data.parent,
                              capture_output=True, text=True, timeout=120)
        assert not check or done.returncode == 0, f"neutrino {args}: {done.stderr}{done.stdout}"
        return done


@contextmanager
def sandboxed_up(instances: str) -> Iterator[tuple[Up, Path]]:
    """`neutrino up` (not started yet) whose agent's "hypervisor" is a fresh test
    namespace, and its base directory.  On the way out, pass or fail: it is stopped
    (its output printed, shown when the test failed), and the hypervisor, the instances
    (namespaces named ``nt-inst-<instances>…``) and every ``qdhcp-``/``qrouter-``
    namespace the agent kept state for are removed with their processes."""
    base = Path(tempfile.mkdtemp(prefix="nt-test-"))
    base.chmod(0o755)  # dnsmasq (no longer root) reads its files under here
    hostns = f"nt-test-{uuid.uuid4().hex[:10]}"
    namespaces.ensure_namespace(hostns)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NEUTRINO_"))}
    env.update(NEUTRINO_AGENT_NETNS=hostns, NEUTRINO_AGENT_HOST=f"e2e-{hostns}",
               NEUTRINO_AGENT_STATE_DIR=str(base / "agent"), NEUTRINO_DATA_DIR=str(base / "data"),
               NEUTRINO_AGENT_REPORT_INTERVAL="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    u = Up(env, free_port(), base / "data", hostns)
    try:
        yield u, base
    finally:
        print(u.stop()[-20000:])
        agent = base / "agent"
        ours = {hostns,
                *(names.router_namespace(r) for r in netns_helpers.names_in(agent / "l3")),
                *(names.dhcp_namespace(n) for n in netns_helpers.names_in(agent / "dhcp"))}
        for ns in namespaces.list_namespaces():
            if ns in ours or ns.startswith(names.INSTANCE_PREFIX + instances):
                netns_helpers.remove_namespace(ns)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def up() -> Iterator[Up]:
    _need()
    # a tag of its own: the cleanup removes this run's instances, never another
    # session's (``nt-inst-e2e…`` namespaces are host-wide)
    tag = uuid.uuid4().hex[:6]
    with sandboxed_up(f"e2e{tag}") as (u, _):
        u.tag = tag
        yield u


def _pinging(up: Up, vm: str, ip: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "neutrino"), "instance", "exec", vm, "--", "ping", "-i",
                             "0.02", "-c", str(count), "-W", "1", ip], env=up.env,
                            cwd=up.data.parent, stdout=subprocess.PIPE, text=True)


def test_up_instances_dhcp_ping_restart_and_cleanup(up: Up) -> None:
    up.start()
    api = requests.Session()
    # `neutrino up` runs its own identity: log in as the admin it wrote clouds.yaml for
    password = (up.data / "clouds.yaml").read_text().split("password: ")[1].split()[0]
    login = api.post(f"{up.url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert login.status_code == 201, login.text
    api.headers["X-Auth-Token"] = login.headers["X-Subject-Token"]
    net = api.post(f"{up.url}/v2.0/networks", json={"network": {"name": "e2e-net"}}).json()
    net = net["network"]
    r = api.post(f"{up.url}/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})
    assert r.status_code == 201, r.text

    # the stock openstack CLI sees the agents alive
    cli = subprocess.run([str(BIN / "openstack"), "network", "agent", "list", "-f", "json"],
                         env={**up.env, "OS_CLIENT_CONFIG_FILE": str(up.data / "clouds.yaml"),
                              "OS_CLOUD": "neutrino"}, capture_output=True, text=True,
                         timeout=60)
    assert cli.returncode == 0, cli.stderr
    agents = json.loads(cli.stdout)
    assert {(a["Agent Type"], a["Alive"]) for a in agents} == {
        ("Linux bridge agent", True), ("DHCP agent", True), ("L3 agent", True)}

    tag = up.tag
    a, b = f"e2e{tag}a", f"e2e{tag}b"
    for vm in (a, b):
        out = up.neutrino("instance", "boot", vm, "--network", "e2e-net").stdout
        assert "ACTIVE" in out and "mtu 1450" in out, out
    listed = up.neutrino("instance", "list").stdout
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows[a][3] == "ACTIVE" and rows[b][3] == "ACTIVE", listed
    ip_b = rows[b][2]
    assert up.neutrino("instance", "exec", a, "--", "ping", "-c", "2", "-W", "2", ip_b).returncode \
        == 0
    mtu = up.neutrino("instance", "exec", a, "--", "cat", "/sys/class/net/eth0/mtu").stdout
    assert mtu.strip() == "1450", "the MTU came by DHCP (option 26)"

    # restart everything (server and agent) while a ping runs: not one packet lost
    pinger = _pinging(up, a, ip_b, 200)
    time.sleep(0.5)
    up.stop()
    up.start()
    out, _ = pinger.communicate(timeout=60)
    assert " 0% packet loss" in out, out

    for vm in (a, b):
        up.neutrino("instance", "delete", vm)
    assert up.neutrino("instance", "delete", a, check=False).returncode == 1
    assert api.delete(f"{up.url}/v2.0/networks/{net['id']}").status_code == 204
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        links = {lk.name for lk in devices.list_links(up.hostns)}
        dhcp_left = namespaces.namespace_exists(names.dhcp_namespace(net["id"]))
        if links == {"lo", "br-ex"} and not dhcp_left:
            break
        time.sleep(0.1)
    # br-ex is the host's end of the external network `up` made: it stays
    assert links == {"lo", "br-ex"} and not dhcp_left, (links, dhcp_left)
    assert not any(n.startswith(names.INSTANCE_PREFIX + f"e2e{tag}")
                   for n in namespaces.list_namespaces())
