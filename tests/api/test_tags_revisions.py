"""The /tags sub-resource, revision numbers, If-Match and timestamps."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import Client, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(params=["networks", "subnets", "ports"])
def resource(request: pytest.FixtureRequest, admin: Client) -> tuple[str, dict]:
    """One resource of each taggable kind: (collection, item)."""
    net, sub = admin.network_with_subnet("10.70.0.0/24")
    item = {"networks": net, "subnets": sub}.get(request.param)
    if item is None:
        item = admin.create("ports", network_id=net["id"])
    return request.param, item


def show(client: Client, collection: str, ident: str) -> dict:
    r = client.get(f"/{collection}/{ident}")
    assert r.status_code == 200, r.text
    return r.json()[collection[:-1]]


def test_tags_sub_resource(admin: Client, resource: tuple[str, dict]) -> None:
    collection, item = resource
    base = f"/{collection}/{item['id']}/tags"
    assert admin.get(base).json() == {"tags": []}
    r = admin.put(base, {"tags": ["b", "a", "c"]})
    assert r.status_code == 200 and r.json() == {"tags": ["b", "a", "c"]}  # as given
    assert admin.get(base).json() == {"tags": ["a", "b", "c"]}
    assert show(admin, collection, item["id"])["tags"] == ["a", "b", "c"]
    assert admin.get(f"{base}/a").status_code == 204
    assert_error(admin.get(f"{base}/zzz"), 404, "TagNotFound", "Tag zzz could not be found.")
    r = admin.put(f"{base}/d")
    assert r.status_code == 201
    assert admin.put(f"{base}/d").status_code == 201  # again: still fine
    assert admin.get(base).json() == {"tags": ["a", "b", "c", "d"]}
    assert admin.delete(f"{base}/b").status_code == 204
    assert_error(admin.delete(f"{base}/b"), 404, "TagNotFound", "Tag b could not be found.")
    r = admin.post(base, {"tags": ["e", "a"]})  # adds, keeps the rest
    assert r.status_code == 200 and r.json() == {"tags": ["e", "a"]}
    assert admin.get(base).json() == {"tags": ["a", "c", "d", "e"]}
    # the tags filter sees them
    found = admin.get(f"/{collection}?tags=a,e&fields=id").json()[collection]
    assert found == [{"id": item["id"]}]
    assert admin.delete(base).status_code == 204
    assert admin.get(base).json() == {"tags": []}
    assert admin.get(f"/{collection}?tags=a").json()[collection] == []


@pytest.mark.parametrize("body,message", [
    ({"tags": ["x", "x"]}, "Duplicate items in the list: 'x'."),
    ({"tags": "x"}, "'x' is not a list."),
    ({"tags": ["a" * 256]}, "exceeds maximum length of 255."),
    ({"tags": [""]}, "is not a valid tag"),
    ({"tags": ["a,b"]}, "is not a valid tag"),
    ({"tags": [1]}, "'1' is not a valid string"),
    ({"tag": ["x"]}, "Invalid tags body"),
    ({"tags": ["x"], "other": 1}, "Invalid tags body"),
    ([], "Invalid tags body"),
])
def test_invalid_tags(admin: Client, body: object, message: str) -> None:
    net = admin.create("networks", name="tags")
    assert_error(admin.put(f"/networks/{net['id']}/tags", body), 400, "InvalidInput", message)
    assert_error(admin.put(f"/networks/{net['id']}/tags/{'a' * 256}"), 400, "InvalidInput",
                 "exceeds maximum length of 255")
    assert admin.get(f"/networks/{net['id']}/tags").json() == {"tags": []}


def test_tags_of_missing_things(admin: Client) -> None:
    missing = "7a7a7a7a-0000-4000-8000-000000000000"
    for collection, kind in (("networks", "Network"), ("subnets", "Subnet"),
                             ("ports", "Port")):
        for method in ("GET", "PUT", "DELETE"):
            r = admin.request(method, f"/{collection}/{missing}/tags", json={"tags": []})
            assert_error(r, 404, f"{kind}NotFound", f"{kind} {missing} could not be found.")
        assert_error(admin.put(f"/{collection}/{missing}/tags/x"), 404, f"{kind}NotFound")
    assert_error(admin.put(f"/routers-x/{missing}/tags", {"tags": []}), 404, "HTTPNotFound")


def test_tags_given_at_creation(admin: Client) -> None:
    net = admin.create("networks", tags=["t1", "t2"])
    assert net["tags"] == ["t1", "t2"]
    sub = admin.create("subnets", network_id=net["id"], cidr="10.71.0.0/24", ip_version=4,
                       tags=["s"])
    assert sub["tags"] == ["s"]
    assert admin.create("ports", network_id=net["id"], tags=["p"])["tags"] == ["p"]


def test_tags_of_others(admin: Client, project_client) -> None:
    owner = project_client()
    reader = project_client(roles="reader")
    reader.session.headers["X-Project-Id"] = owner.session.headers["X-Project-Id"]
    stranger = project_client()
    net = owner.create("networks", name="tagged", tags=["mine"])
    base = f"/networks/{net['id']}/tags"
    assert reader.get(base).json() == {"tags": ["mine"]}
    assert_error(reader.put(f"{base}/x"), 403, "PolicyNotAuthorized",
                 "rule:update_network:tags is disallowed by policy")
    assert_error(reader.delete(base), 403, "PolicyNotAuthorized",
                 "rule:delete_network:tags is disallowed by policy")
    for r in (stranger.get(base), stranger.put(f"{base}/x"), stranger.delete(base),
              stranger.put(base, {"tags": []}), stranger.get(f"{base}/mine")):
        assert_error(r, 404, "NetworkNotFound")
    shared = admin.create("networks", shared=True)
    assert owner.get(f"/networks/{shared['id']}/tags").status_code == 200
    assert_error(owner.put(f"/networks/{shared['id']}/tags/x"), 403, "PolicyNotAuthorized")
    assert owner.get(base).json() == {"tags": ["mine"]}


def test_revision_number_increases_on_every_change(admin: Client) -> None:
    net = admin.create("networks", name="rev")
    rev = net["revision_number"]

    def current() -> int:
        return show(admin, "networks", net["id"])["revision_number"]

    steps = [
        lambda: admin.put(f"/networks/{net['id']}", {"network": {"name": "rev2"}}),
        lambda: admin.put(f"/networks/{net['id']}", {"network": {"shared": True}}),
        lambda: admin.put(f"/networks/{net['id']}/tags/a"),
        lambda: admin.put(f"/networks/{net['id']}/tags", {"tags": ["b"]}),
        lambda: admin.delete(f"/networks/{net['id']}/tags/b"),
        lambda: admin.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                   "cidr": "10.72.0.0/24"}}),
    ]
    for step in steps:
        assert step().status_code < 300
        assert current() == rev + 1
        rev += 1
    # what changes nothing makes no revision
    noops = [
        lambda: admin.put(f"/networks/{net['id']}", {"network": {"name": "rev2"}}),
        lambda: admin.put(f"/networks/{net['id']}", {"network": {"shared": True}}),
        lambda: admin.put(f"/networks/{net['id']}/tags", {"tags": []}),
        lambda: admin.delete(f"/networks/{net['id']}/tags"),
        lambda: admin.get(f"/networks/{net['id']}"),
    ]
    for noop in noops:
        assert noop().status_code < 300
        assert current() == rev
    # a port on the network is no change of the network
    admin.create("ports", network_id=net["id"])
    assert current() == rev


def test_if_match(admin: Client, resource: tuple[str, dict]) -> None:
    collection, item = resource
    kind = collection[:-1]
    url = f"/{collection}/{item['id']}"
    rev = show(admin, collection, item["id"])["revision_number"]
    stale = {"If-Match": "revision_number=999"}
    r = admin.put(url, {kind: {"name": "x"}}, headers=stale)
    assert_error(r, 412, "RevisionNumberConstraintFailed",
                 f"Constrained to 999, but current revision is {rev}")
    assert show(admin, collection, item["id"])["name"] == item["name"]  # not changed
    r = admin.put(url, {kind: {"name": "x"}}, headers={"If-Match": f"revision_number={rev}"})
    assert r.status_code == 200 and r.json()[kind]["revision_number"] == rev + 1
    # etags that are not revision numbers are not ours to judge
    for header in ("*", '"abc"', 'W/"abc"'):
        r = admin.put(url, {kind: {"description": header}}, headers={"If-Match": header})
        assert r.status_code == 200, (header, r.text)
    rev = show(admin, collection, item["id"])["revision_number"]
    r = admin.put(url, {kind: {"description": "mixed"}},
                  headers={"If-Match": f'"abc", revision_number={rev}'})
    assert r.status_code == 200, r.text
    rev += 1
    assert_error(admin.put(url, {kind: {"name": "y"}}, headers={
        "If-Match": "revision_number=abc"}), 400, "BadRequest",
        "Bad if-match request: Revision number etag must be in the format of "
        "revision_number=<int>.")
    assert_error(admin.put(url, {kind: {"name": "y"}}, headers={
        "If-Match": f"revision_number={rev}, revision_number={rev}"}), 400, "BadRequest",
        "Multiple revision_number etags are not supported.")
    assert_error(admin.put(f"{url}/tags/x", headers=stale), 412,
                 "RevisionNumberConstraintFailed")
    assert_error(admin.delete(url, headers=stale), 412, "RevisionNumberConstraintFailed")
    assert admin.get(url).status_code == 200
    if collection != "networks":  # the network still has a subnet or port on it
        r = admin.delete(url, headers={"If-Match": f"revision_number={rev}"})
        assert r.status_code == 204, r.text


def test_timestamps(admin: Client) -> None:
    net = admin.create("networks", name="ts")
    assert TIMESTAMP.match(net["created_at"]) and TIMESTAMP.match(net["updated_at"])
    assert net["created_at"] == net["updated_at"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert net["created_at"] <= now
    time.sleep(1.05)  # timestamps have whole seconds
    updated = admin.put(f"/networks/{net['id']}", {"network": {"name": "ts2"}}).json()[
        "network"]
    assert updated["created_at"] == net["created_at"]
    assert updated["updated_at"] > net["updated_at"]
    assert TIMESTAMP.match(updated["updated_at"])
    listed = admin.get("/networks", params={"sort_key": "created_at", "sort_dir": "desc",
                                            "fields": ["id", "created_at"]}).json()
    stamps = [n["created_at"] for n in listed["networks"]]
    assert stamps == sorted(stamps, reverse=True)
