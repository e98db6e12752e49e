"""The hands-on lab (examples/lab.sh) as a user runs it: the real `openstack` CLI against
`neutrino up`, in an isolated setting (the "hypervisor" and br-ex in a test namespace).

The lab's "not from outside" step needs security groups enforced by the agent: until
their reconciler exists the script reports it skipped, with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from neutrino import names
from neutrino.linux import namespaces

from .l3_env import L3Up, l3up_fixture  # noqa: F401
from .test_up_instances import BIN

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.sh"


def test_lab(l3up: L3Up) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("the lab needs bash and curl")
    up = l3up.up
    up.start()
    env = {**up.env, "OS_CLIENT_CONFIG_FILE": str(up.data / "clouds.yaml"),
           "OS_CLOUD": "neutrino", "LAB_PREFIX": l3up.name("-"), "LAB_HOST_NETNS": l3up.hostns,
           "NEUTRINO": str(BIN / "neutrino"), "OPENSTACK": str(BIN / "openstack"),
           "TMPDIR": str(l3up.base)}
    done = subprocess.run(["bash", str(LAB)], env=env, cwd=up.data.parent,
                          capture_output=True, text=True, timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[FAIL]" not in done.stdout
    for check in ("pings the jump host's floating IP", "floating IP status ACTIVE",
                  "jumphost -> web1", "jumphost -> web2", "through the router's SNAT"):
        assert check in done.stdout, check
    # enforced security groups, or the step says why it was skipped
    assert ("[skip] not from outside" in done.stdout) != (
        "[ok]   not from outside: web1's port 80 is closed" in done.stdout)

    routers = {p.name for p in (l3up.base / "agent" / "l3").iterdir()}
    assert len(routers) == 1
    cleaned = subprocess.run(["bash", str(LAB), "clean"], env=env, cwd=up.data.parent,
                             capture_output=True, text=True, timeout=300)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    networks = l3up.show("network", "list")
    assert [n["Name"] for n in networks] == ["public"], networks
    assert l3up.show("floating", "ip", "list") == []
    (router,) = routers
    deadline = time.monotonic() + 30
    while namespaces.namespace_exists(names.router_namespace(router)) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not namespaces.namespace_exists(names.router_namespace(router)), "router left behind"
