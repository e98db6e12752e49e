"""The Octavia v2 API on every backend: CRUD of each object, statuses, the status
tree, cascade delete with its VIP port, the refusals, isolation and quotas."""

from __future__ import annotations

import sqlalchemy as sa

from tests.api.lb_helpers import LbClient, assert_fault
from tests.conftest import Server


def _stack(c: LbClient, subnet: dict) -> dict:
    """A load balancer with a listener, a pool, a member and a monitor (all ACTIVE)."""
    lb = c.loadbalancer(subnet["id"], name="lb1")
    listener = c.make("/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTP",
                      protocol_port=80, insert_headers={"X-Forwarded-For": "true"})
    c.active(lb["id"])
    pool = c.make("/pools", "pool", listener_id=listener["id"], protocol="HTTP",
                  lb_algorithm="ROUND_ROBIN")
    c.active(lb["id"])
    member = c.make(f"/pools/{pool['id']}/members", "member", address="10.9.0.10",
                    protocol_port=8080, subnet_id=subnet["id"])
    c.active(lb["id"])
    monitor = c.make("/healthmonitors", "healthmonitor", pool_id=pool["id"], type="HTTP",
                     delay=3, timeout=3, max_retries=3)
    c.active(lb["id"])
    return {"lb": lb, "listener": listener, "pool": pool, "member": member,
            "monitor": monitor}


def test_discovery_and_envelope(server: Server) -> None:
    c = LbClient.fresh(server.url)
    versions = c.session.get(f"{server.url}/load-balancer/").json()["versions"]
    assert any(v["id"] == "v2.0" for v in versions)
    assert all(v["links"][0]["href"].endswith("/load-balancer/v2") for v in versions)
    assert_fault(c.get(f"/loadbalancers/{'0' * 8}-0000-0000-0000-{'0' * 12}"), 404,
                 "not found")


def test_every_object_crud_and_status_tree(server: Server) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    s = _stack(c, subnet)
    lb, listener, pool = s["lb"], s["listener"], s["pool"]
    # the VIP is a real port of the subnet, Octavia's
    port = c.neutron("GET", f"/ports/{lb['vip_port_id']}").json()["port"]
    assert port["device_owner"] == "Octavia"
    assert port["fixed_ips"][0]["ip_address"] == lb["vip_address"]
    assert lb["vip_subnet_id"] == subnet["id"]
    assert lb["vip_network_id"] == subnet["network_id"]
    # what each shows of the others
    lb = c.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert lb["listeners"] == [{"id": listener["id"]}] and lb["pools"] == [{"id": pool["id"]}]
    assert lb["operating_status"] == "OFFLINE"  # no data plane behind it yet
    listener = c.get(f"/listeners/{listener['id']}").json()["listener"]
    assert listener["default_pool_id"] == pool["id"]
    assert listener["insert_headers"] == {"X-Forwarded-For": "true"}
    assert listener["connection_limit"] == -1 and listener["timeout_client_data"] == 50000
    pool = c.get(f"/pools/{pool['id']}").json()["pool"]
    assert pool["healthmonitor_id"] == s["monitor"]["id"]
    assert pool["members"] == [{"id": s["member"]["id"]}]
    monitor = c.get(f"/healthmonitors/{s['monitor']['id']}").json()["healthmonitor"]
    assert (monitor["http_method"], monitor["url_path"], monitor["expected_codes"]) == \
        ("GET", "/", "200")
    # updates go PENDING_UPDATE, then ACTIVE
    r = c.put(f"/listeners/{listener['id']}", {"listener": {"connection_limit": 100,
                                                            "timeout_client_data": 1000}})
    assert r.status_code == 200, r.text
    assert r.json()["listener"]["provisioning_status"] == "PENDING_UPDATE"
    c.active(lb["id"])
    assert c.get(f"/listeners/{listener['id']}").json()["listener"]["connection_limit"] == 100
    r = c.put(f"/pools/{pool['id']}", {"pool": {"lb_algorithm": "LEAST_CONNECTIONS",
                                                "session_persistence": {
                                                    "type": "APP_COOKIE",
                                                    "cookie_name": "sid"}}})
    assert r.status_code == 200, r.text
    c.active(lb["id"])
    r = c.put(f"/pools/{pool['id']}/members/{s['member']['id']}",
              {"member": {"weight": 5, "backup": True}})
    assert r.status_code == 200 and r.json()["member"]["weight"] == 5, r.text
    c.active(lb["id"])
    r = c.put(f"/healthmonitors/{monitor['id']}", {"healthmonitor": {"delay": 10,
                                                                    "url_path": "/health"}})
    assert r.status_code == 200 and r.json()["healthmonitor"]["url_path"] == "/health", r.text
    c.active(lb["id"])
    # L7: a redirect to a URL with a path rule
    policy = c.make("/l7policies", "l7policy", listener_id=listener["id"],
                    action="REDIRECT_TO_URL", redirect_url="http://example.com/")
    assert policy["position"] == 1 and policy["redirect_http_code"] == 302
    c.active(lb["id"])
    rule = c.make(f"/l7policies/{policy['id']}/rules", "rule", type="PATH",
                  compare_type="STARTS_WITH", value="/api")
    c.active(lb["id"])
    first = c.make("/l7policies", "l7policy", listener_id=listener["id"], action="REJECT",
                   position=1)
    c.active(lb["id"])
    assert c.get(f"/l7policies/{policy['id']}").json()["l7policy"]["position"] == 2
    r = c.put(f"/l7policies/{policy['id']}/rules/{rule['id']}", {"rule": {"invert": True}})
    assert r.status_code == 200 and r.json()["rule"]["invert"] is True, r.text
    c.active(lb["id"])
    # batch update: one member kept, one new; the old one goes
    r = c.put(f"/pools/{pool['id']}/members", {"members": [
        {"address": "10.9.0.11", "protocol_port": 8080},
        {"address": "10.9.0.12", "protocol_port": 8080}]})
    assert r.status_code == 202, r.text
    c.active(lb["id"])
    members = c.get(f"/pools/{pool['id']}/members").json()["members"]
    assert sorted(m["address"] for m in members) == ["10.9.0.11", "10.9.0.12"]
    assert all(m["provisioning_status"] == "ACTIVE" for m in members)
    # the status tree
    tree = c.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    assert tree["provisioning_status"] == "ACTIVE"
    (lt,) = tree["listeners"]
    assert lt["id"] == listener["id"] and {p["id"] for p in lt["l7policies"]} == \
        {policy["id"], first["id"]}
    (pt,) = lt["pools"]
    assert pt["health_monitor"]["id"] == monitor["id"]
    assert {m["address"] for m in pt["members"]} == {"10.9.0.11", "10.9.0.12"}
    stats = c.get(f"/loadbalancers/{lb['id']}/stats").json()["stats"]
    assert stats["bytes_in"] == 0 and "active_connections" in stats
    # children go one by one; the listener takes its policies with it
    assert c.delete(f"/l7policies/{first['id']}").status_code == 204
    c.active(lb["id"])
    assert c.get(f"/l7policies/{policy['id']}").json()["l7policy"]["position"] == 1
    assert c.delete(f"/healthmonitors/{monitor['id']}").status_code == 204
    c.active(lb["id"])
    c.gone(f"/healthmonitors/{monitor['id']}")


def test_cascade_delete_takes_the_vip_port(server: Server) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    s = _stack(c, subnet)
    lb = s["lb"]
    assert_fault(c.delete(f"/loadbalancers/{lb['id']}"), 400, "children")
    assert c.delete(f"/loadbalancers/{lb['id']}?cascade=true").status_code == 204
    c.gone(f"/loadbalancers/{lb['id']}")
    for path in (f"/listeners/{s['listener']['id']}", f"/pools/{s['pool']['id']}",
                 f"/healthmonitors/{s['monitor']['id']}"):
        assert c.get(path).status_code == 404
    assert c.neutron("GET", f"/ports/{lb['vip_port_id']}").status_code == 404
    # a plain delete of an empty one takes its port too
    lb2 = c.loadbalancer(subnet["id"])
    assert c.delete(f"/loadbalancers/{lb2['id']}").status_code == 204
    c.gone(f"/loadbalancers/{lb2['id']}")
    assert c.neutron("GET", f"/ports/{lb2['vip_port_id']}").status_code == 404


def test_vip_by_network_and_by_port(server: Server) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet("10.8.0.0/24")
    lb = c.make("/loadbalancers", "loadbalancer", vip_network_id=subnet["network_id"])
    assert lb["vip_subnet_id"] == subnet["id"] and lb["vip_address"].startswith("10.8.0.")
    r = c.neutron("POST", "/ports", {"port": {"network_id": subnet["network_id"]}})
    port = r.json()["port"]
    lb2 = c.make("/loadbalancers", "loadbalancer", vip_port_id=port["id"])
    assert lb2["vip_address"] == port["fixed_ips"][0]["ip_address"]
    c.active(lb2["id"])
    assert c.delete(f"/loadbalancers/{lb2['id']}").status_code == 204
    c.gone(f"/loadbalancers/{lb2['id']}")
    # the port was the user's: it stays
    assert c.neutron("GET", f"/ports/{port['id']}").status_code == 200
    assert_fault(c.post("/loadbalancers", {"loadbalancer": {"name": "x"}}), 400, "VIP")


def test_immutable_while_pending_and_the_start_sweep(server: Server, tmp_path) -> None:
    """A load balancer left PENDING (its process died before the provider's report)
    refuses changes with 409; the next server start completes it."""
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    lb = c.loadbalancer(subnet["id"])
    with server.db.engine.begin() as conn:  # what a crash after the commit leaves
        conn.execute(sa.text("UPDATE lb_loadbalancers SET provisioning_status = "
                             "'PENDING_UPDATE' WHERE id = :id"), {"id": lb["id"]})
    assert_fault(c.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "n"}}), 409,
                 "immutable")
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 22}}), 409,
        "immutable")
    assert_fault(c.delete(f"/loadbalancers/{lb['id']}"), 409, "immutable")
    from tests.conftest import start_server
    other = start_server(tmp_path, server.settings.database_url)  # a second server starts
    try:
        assert c.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"][
            "provisioning_status"] == "ACTIVE"
    finally:
        other.stop()


def test_refusals(server: Server) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    s = _stack(c, subnet)
    lb, listener, pool = s["lb"], s["listener"], s["pool"]
    # a member on another project's subnet
    foreign = LbClient.fresh(server.url).subnet("10.7.0.0/24")
    assert_fault(c.post(f"/pools/{pool['id']}/members", {"member": {
        "address": "10.7.0.5", "protocol_port": 80, "subnet_id": foreign["id"]}}), 400,
        "not found")
    # the same member twice
    assert_fault(c.post(f"/pools/{pool['id']}/members", {"member": {
        "address": "10.9.0.10", "protocol_port": 8080}}), 409, "already using")
    # a listener port in use (UDP may share it)
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 80}}), 409,
        "protocol_port 80")
    udp = c.make("/listeners", "listener", loadbalancer_id=lb["id"], protocol="UDP",
                 protocol_port=80)
    c.active(lb["id"])
    # an unknown algorithm, protocol, attribute
    assert_fault(c.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                            "lb_algorithm": "RANDOM"}}), 400, "lb_algorithm")
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "FTP", "protocol_port": 21}}), 400,
        "protocol")
    assert_fault(c.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                            "lb_algorithm": "ROUND_ROBIN", "color": 1}}),
                 400, "color")
    # a second monitor on a pool; a timeout beyond the delay; HTTP fields on TCP
    assert_fault(c.post("/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "TCP", "delay": 3, "timeout": 3,
        "max_retries": 3}}), 409, "already has a health monitor")
    pool2 = c.make("/pools", "pool", loadbalancer_id=lb["id"], protocol="TCP",
                   lb_algorithm="SOURCE_IP")
    c.active(lb["id"])
    pool3 = c.make("/pools", "pool", loadbalancer_id=lb["id"], protocol="UDP",
                   lb_algorithm="ROUND_ROBIN")
    c.active(lb["id"])
    assert_fault(c.post("/healthmonitors", {"healthmonitor": {
        "pool_id": pool3["id"], "type": "UDP-CONNECT", "delay": 3, "timeout": 5,
        "max_retries": 3}}), 400, "timeout")
    assert_fault(c.post("/healthmonitors", {"healthmonitor": {
        "pool_id": pool2["id"], "type": "UDP-CONNECT", "delay": 3, "timeout": 3,
        "max_retries": 3}}), 400, "UDP-CONNECT")
    assert_fault(c.post("/healthmonitors", {"healthmonitor": {
        "pool_id": pool2["id"], "type": "TCP", "delay": 3, "timeout": 3, "max_retries": 3,
        "url_path": "/"}}), 400, "url_path")
    # session persistence that does not fit; a pool a listener cannot send to
    assert_fault(c.post("/pools", {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "SOURCE_IP", "cookie_name": "x"}}}), 400, "cookie")
    assert_fault(c.post("/pools", {"pool": {
        "listener_id": udp["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}), 400,
        "protocol")
    # headers on a TCP listener; L7 on a UDP one; a redirect without its URL
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 81,
        "insert_headers": {"X-Forwarded-For": "true"}}}), 400, "headers")
    assert_fault(c.post("/l7policies", {"l7policy": {
        "listener_id": udp["id"], "action": "REJECT"}}), 400, "UDP")
    assert_fault(c.post("/l7policies", {"l7policy": {
        "listener_id": listener["id"], "action": "REDIRECT_TO_URL"}}), 400, "redirect_url")
    # bad bodies
    assert_fault(c.post("/loadbalancers", [1, 2]), 400)
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 70000}}), 400,
        "protocol_port")
    # nothing was half made
    assert len(c.get("/listeners").json()["listeners"]) == 2


def test_isolation_and_roles(server: Server) -> None:
    a = LbClient.fresh(server.url)
    subnet = a.subnet()
    lb = a.loadbalancer(subnet["id"])
    b = LbClient.fresh(server.url)
    assert b.get("/loadbalancers").json()["loadbalancers"] == []
    assert_fault(b.get(f"/loadbalancers/{lb['id']}"), 403)
    assert_fault(b.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}), 403)
    assert_fault(b.delete(f"/loadbalancers/{lb['id']}"), 403)
    assert_fault(b.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 22}}), 403)
    # B cannot put a VIP on A's subnet
    assert_fault(b.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
                 400, "not found")
    reader = LbClient(server.url, a.project, roles="reader")
    assert [x["id"] for x in reader.get("/loadbalancers").json()["loadbalancers"]] == \
        [lb["id"]]
    assert_fault(reader.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}),
                 403)
    nobody = LbClient(server.url, a.project, roles="")
    assert_fault(nobody.get("/loadbalancers"), 403)
    admin = LbClient(server.url)
    assert lb["id"] in [x["id"] for x in admin.get("/loadbalancers").json()["loadbalancers"]]
    assert_fault(a.put(f"/loadbalancers/{lb['id']}/failover", None), 403)
    assert admin.put(f"/loadbalancers/{lb['id']}/failover", None).status_code == 202
    a.active(lb["id"])


def test_quotas(server: Server) -> None:
    c = LbClient.fresh(server.url)
    admin = LbClient(server.url)
    subnet = c.subnet()
    defaults = c.get("/quotas/defaults").json()["quota"]
    assert defaults["loadbalancer"] == -1 and defaults["load_balancer"] == -1
    assert_fault(c.put(f"/quotas/{c.project}", {"quota": {"loadbalancer": 5}}), 403)
    r = admin.put(f"/quotas/{c.project}", {"quota": {"loadbalancer": 1, "listener": 1}})
    assert r.status_code == 202 and r.json()["quota"]["loadbalancer"] == 1, r.text
    assert c.get(f"/quotas/{c.project}").json()["quota"]["listener"] == 1
    lb = c.loadbalancer(subnet["id"])
    assert_fault(c.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
                 403, "Quota")
    c.make("/listeners", "listener", loadbalancer_id=lb["id"], protocol="TCP",
           protocol_port=22)
    c.active(lb["id"])
    assert_fault(c.post("/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 23}}), 403, "Quota")
    assert admin.delete(f"/quotas/{c.project}").status_code == 204
    c.make("/listeners", "listener", loadbalancer_id=lb["id"], protocol="TCP",
           protocol_port=23)


def test_lists_filter_sort_page(server: Server) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    ids = [c.make("/loadbalancers", "loadbalancer", vip_subnet_id=subnet["id"],
                  name=f"lb{n}", tags=["even"] if n % 2 == 0 else [])["id"] for n in range(4)]
    names = [x["name"] for x in c.get("/loadbalancers?sort=name:desc").json()["loadbalancers"]]
    assert names == ["lb3", "lb2", "lb1", "lb0"]
    assert [x["id"] for x in c.get("/loadbalancers?name=lb2").json()["loadbalancers"]] == \
        [ids[2]]
    assert len(c.get("/loadbalancers?tags=even").json()["loadbalancers"]) == 2
    page = c.get("/loadbalancers?limit=2&sort=name:asc").json()
    assert [x["name"] for x in page["loadbalancers"]] == ["lb0", "lb1"]
    (nxt,) = [link for link in page["loadbalancers_links"] if link["rel"] == "next"]
    rest = c.session.get(nxt["href"]).json()["loadbalancers"]
    assert [x["name"] for x in rest] == ["lb2", "lb3"]
    only = c.get("/loadbalancers?fields=id&fields=name").json()["loadbalancers"]
    assert all(set(x) == {"id", "name"} for x in only)


def test_http_layer_refusals_in_octavia_envelope(server: Server) -> None:
    """Refusals made before any route (a body over the limit, an unknown path or
    method) come in Octavia's envelope under /load-balancer too."""
    c = LbClient.fresh(server.url)
    big = {"loadbalancer": {"name": "x" * (server.settings.max_request_body_size + 10)}}
    assert_fault(c.post("/loadbalancers", big), 413)
    assert_fault(c.get("/nothing-here"), 404)
    assert_fault(c.session.get(f"{server.url}/load-balancer/v3/x"), 404)
    r = c.session.request("PATCH", f"{c.base}/loadbalancers")
    assert r.status_code in (404, 405) and "faultstring" in r.json()


class _Failing:
    """A provider whose every call fails after the commit (a fault no real provider
    can be made to show on demand)."""

    def __getattr__(self, name: str) -> object:
        def fail(*args: object) -> None:
            raise RuntimeError(f"{name} failed")
        return fail


def test_a_provider_failing_after_commit_is_no_500(server: Server, tmp_path) -> None:
    c = LbClient.fresh(server.url)
    subnet = c.subnet()
    providers = server._server.config.app.state.services.loadbalancers.providers
    working = dict(providers)
    providers.update({name: _Failing() for name in providers})
    try:
        r = c.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet["id"]}})
        assert r.status_code == 201, r.text  # committed: the client is told so
        lb = r.json()["loadbalancer"]
        assert c.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"][
            "provisioning_status"] == "PENDING_CREATE"
    finally:
        providers.update(working)
    from tests.conftest import start_server
    other = start_server(tmp_path, server.settings.database_url)  # its start sweeps
    try:
        c.active(lb["id"])
    finally:
        other.stop()
