"""`neutrino up` with routers and the external network, as a user runs it, for the
L3 end-to-end tests and the lab.

The agent's "hypervisor" is a test namespace (``NEUTRINO_AGENT_NETNS``): ``br-ex``
and its 172.24.4.1 live there, never in the host's own namespace, and nothing is
forwarded beyond it.  Whatever happens, every process and namespace made here is
removed: instances (``nt-inst-<tag>…``), ``qdhcp-``/``qrouter-`` namespaces the agent
left markers or files for, "outside" namespaces, the hypervisor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neutrino.linux import names, netlink
from tests import netns_helpers
from tests.conftest import free_port

from .test_up_instances import BIN, Up


def need_l3_e2e() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: runs the data plane")
    for tool in ("ip", "dnsmasq", "busybox", "ping", "nft", "sysctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: not installed")
    if not (BIN / "openstack").exists():
        pytest.skip("needs the openstack CLI (python-openstackclient) in the venv")


@dataclass
class L3Up:
    up: Up
    base: Path
    tag: str
    outside: list[str] = field(default_factory=list)

    @property
    def hostns(self) -> str:
        return self.up.hostns

    def openstack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**self.up.env, "OS_CLIENT_CONFIG_FILE": str(self.up.data / "clouds.yaml"),
               "OS_CLOUD": "neutrino"}
        done = subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert not check or done.returncode == 0, f"openstack {args}: {done.stderr}"
        return done

    def show(self, *args: str) -> dict:
        return json.loads(self.openstack(*args, "-f", "json").stdout)

    def name(self, short: str) -> str:
        """An instance name unique to this run (instances are host-wide namespaces)."""
        return f"e2e{self.tag}{short}"

    def in_instance(self, instance: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", names.instance_namespace(instance), *argv]

    def serve(self, netns: str, port: int, label: str) -> subprocess.Popen:
        return netns_helpers.serve(netns, port, label)

    def call(self, netns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
        return netns_helpers.call(netns, ip, port, timeout)

    def make_outside(self, ip: str, mac: str | None = None) -> str:
        """A namespace standing for a machine on the external network, on br-ex."""
        ns = f"nt-test-{uuid.uuid4().hex[:10]}"
        self.outside.append(ns)
        netlink.ensure_namespace(ns)
        netns_helpers.plug_outside(ns, self.hostns, ip, mac)
        return ns


@pytest.fixture(name="l3up")
def l3up_fixture() -> Iterator[L3Up]:
    need_l3_e2e()
    base = Path(tempfile.mkdtemp(prefix="nt-test-"))
    base.chmod(0o755)  # dnsmasq (no longer root) reads its files under here
    hostns = f"nt-test-{uuid.uuid4().hex[:10]}"
    netlink.ensure_namespace(hostns)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NEUTRINO_"))}
    env.update(NEUTRINO_AGENT_NETNS=hostns, NEUTRINO_AGENT_HOST=f"e2e-{hostns}",
               NEUTRINO_AGENT_STATE_DIR=str(base / "agent"), NEUTRINO_DATA_DIR=str(base / "data"),
               NEUTRINO_AGENT_REPORT_INTERVAL="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env_up = Up(env, free_port(), base / "data", hostns)
    made = L3Up(env_up, base, uuid.uuid4().hex[:6])
    try:
        yield made
    finally:
        print(env_up.stop()[-20000:])  # shown when the test failed
        agent = base / "agent"
        ours = {hostns, *made.outside,
                *(names.router_namespace(r) for r in netns_helpers.names_in(agent / "l3")),
                *(names.dhcp_namespace(n) for n in netns_helpers.names_in(agent / "dhcp"))}
        for ns in netlink.list_namespaces():
            if ns in ours or ns.startswith(names.INSTANCE_PREFIX + f"e2e{made.tag}"):
                netns_helpers.remove_namespace(ns)
        shutil.rmtree(base, ignore_errors=True)
