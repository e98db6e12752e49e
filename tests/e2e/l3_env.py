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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neutrino import names
from neutrino.linux import namespaces
from tests import netns_helpers

from .test_up_instances import BIN, Up, sandboxed_up


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
        namespaces.ensure_namespace(ns)
        netns_helpers.plug_outside(ns, self.hostns, ip, mac)
        return ns


@pytest.fixture(name="l3up")
def l3up_fixture() -> Iterator[L3Up]:
    need_l3_e2e()
    tag = uuid.uuid4().hex[:6]
    with sandboxed_up(f"e2e{tag}") as (env_up, base):
        made = L3Up(env_up, base, tag)
        try:
            yield made
        finally:
            for ns in made.outside:
                netns_helpers.remove_namespace(ns)
