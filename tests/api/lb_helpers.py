"""A client of the load-balancer API (``/load-balancer/v2``) for the API tests."""

from __future__ import annotations

import uuid

import requests

from tests.conftest import wait_for


class LbClient:
    """requests against ``/load-balancer/v2/lbaas`` as one identity (noauth headers)."""

    def __init__(self, url: str, project: str | None = None, roles: str = "member") -> None:
        self.url = url
        self.base = f"{url}/load-balancer/v2/lbaas"
        self.session = requests.Session()
        self.project = project
        if project is not None:
            self.session.headers.update({"X-Project-Id": project, "X-Roles": roles})

    @classmethod
    def fresh(cls, url: str, roles: str = "member") -> LbClient:
        return cls(url, f"p-{uuid.uuid4().hex[:8]}", roles)

    def request(self, method: str, path: str, body: object = None) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, timeout=30)

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> requests.Response:
        return self.request("POST", path, body)

    def put(self, path: str, body: object) -> requests.Response:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> requests.Response:
        return self.request("DELETE", path)

    def neutron(self, method: str, path: str, body: object = None) -> requests.Response:
        return self.session.request(method, f"{self.url}/v2.0{path}", json=body, timeout=30)

    def subnet(self, cidr: str = "10.9.0.0/24") -> dict:
        net = self.neutron("POST", "/networks", {"network": {"name": "lbnet"}}).json()["network"]
        r = self.neutron("POST", "/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr,
                                                         "ip_version": 4}})
        assert r.status_code == 201, r.text
        return r.json()["subnet"]

    def make(self, path: str, kind: str, **attrs: object) -> dict:
        r = self.post(path, {kind: attrs})
        assert r.status_code == 201, r.text
        return r.json()[kind]

    def active(self, lb_id: str) -> dict:
        """Wait until the load balancer is ACTIVE again (``--wait``)."""
        def done() -> dict | None:
            lb = self.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
            return lb if lb["provisioning_status"] == "ACTIVE" else None
        return wait_for(done, 10, f"load balancer {lb_id} ACTIVE")

    def loadbalancer(self, subnet_id: str, **attrs: object) -> dict:
        lb = self.make("/loadbalancers", "loadbalancer", vip_subnet_id=subnet_id, **attrs)
        return self.active(lb["id"])

    def gone(self, path: str) -> None:
        wait_for(lambda: self.get(path).status_code == 404, 10, f"{path} gone")


def assert_fault(r: requests.Response, status: int, contains: str | None = None) -> dict:
    """Octavia's envelope: faultcode, faultstring, debuginfo."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
    assert body["faultcode"] == ("Client" if status < 500 else "Server")
    assert body["faultstring"]
    if contains is not None:
        assert contains in body["faultstring"], body
    return body
