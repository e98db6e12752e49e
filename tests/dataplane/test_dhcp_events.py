"""No change that makes a network this host's to serve goes unnoticed (finding 3).

Which host serves a network's DHCP is decided on the server from the DHCP agents that
are alive and enabled, when the host asks; a change of that (an agent enabled again,
counted alive again, another one gone) is no API write on the network and sent no mark,
so a network that became a host's to serve waited for some later event on it (another
port) or the periodic resync.  Every heartbeat's answer now names the networks the host
serves, and the agent marks those it did not know dirty.
"""

from __future__ import annotations

import uuid

from neutrino.cli import instance as inst
from tests.conftest import Client

from .test_agent_dataplane import HOST, Cloud, cloud, wait_for  # noqa: F401


def _dhcp_agent(c: Cloud) -> dict | None:
    agents = c.api.get("/agents?agent_type=DHCP%20agent").json()["agents"]
    return next((a for a in agents if a["host"] == HOST), None)


def _enable(c: Cloud, agent_id: str, up: bool) -> None:
    r = c.api.put(f"/agents/{agent_id}", {"agent": {"admin_state_up": up}})
    assert r.status_code == 200, r.text


def test_a_dhcp_agent_enabled_again_serves_the_networks_made_meanwhile(
        cloud: Cloud) -> None:  # noqa: F811
    cloud.start_agent()
    wait_for(lambda: (_dhcp_agent(cloud) or {}).get("alive"), what="DHCP agent alive")
    agent = _dhcp_agent(cloud)
    assert agent is not None
    _enable(cloud, agent["id"], False)
    # a shared network and another project's instance on it, while no DHCP agent serves
    net, _ = cloud.network("10.0.0.0/24", shared=True)
    other = Client(cloud.server.url, uuid.uuid4().hex)
    port = other.create("ports", network_id=net["id"])
    r = cloud.api.put(f"/ports/{port['id']}", {"port": {
        "binding:host_id": HOST, "device_owner": inst.OWNER, "device_id": str(uuid.uuid4())}})
    assert r.status_code == 200, r.text
    ns = cloud.make_ns()
    name = ns.removeprefix("nt-test-")
    settings = cloud.settings()
    inst._plug(settings, name, ns, port["id"], port["mac_address"])
    wait_for(lambda: cloud.agent is not None and cloud.agent.idle, what="agent idle")
    _enable(cloud, agent["id"], True)
    # no write on the network since: the next heartbeat (0.3 s here) must tell the agent
    lease = inst._dhcp(settings, name, ns, 8)
    assert lease["ip"] == port["fixed_ips"][0]["ip_address"]
