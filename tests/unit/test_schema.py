"""The resource declarations: conversion, defaults and refusals derive from them."""

import pytest

from neutrino import errors
from neutrino.schema import kinds
from neutrino.schema.resources import NETWORK, PORT, SUBNET


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("true", True), ("False", False), (1, True), ("0", False)])
def test_boolean_accepts_upstream_spellings(value: object, expected: bool) -> None:
    assert kinds.Boolean()(value) is expected


@pytest.mark.parametrize("value", ["x", 2, None, [], 1.5])
def test_boolean_refuses_everything_else(value: object) -> None:
    with pytest.raises(kinds.BadValue):
        kinds.Boolean()(value)


def test_values_are_normalised_on_the_way_in() -> None:
    assert kinds.MacAddress()("FA-16-3E-00-00-01") == "fa:16:3e:00:00:01"
    assert kinds.IpAddress()("fd00:0:0::0001") == "fd00::1"
    assert kinds.Cidr(strict=False)("10.0.0.5/24") == "10.0.0.0/24"
    assert kinds.Uuid()("8B0B3A0C-0000-4000-8000-000000000000") == \
        "8b0b3a0c-0000-4000-8000-000000000000"


@pytest.mark.parametrize(("kind", "value"), [
    (kinds.MacAddress(), "01:00:00:00:00:00"),  # multicast
    (kinds.MacAddress(), "00:00:00:00:00:00"),
    (kinds.IpAddress(), "10.0.0.0/24"),
    (kinds.IpAddress(), " 10.0.0.1"),
    (kinds.Cidr(), "10.0.0.5/24"),
    (kinds.Cidr(), "10.0.0.0/33"),
    (kinds.Uuid(), "abc"),
    (kinds.Integer(0, 10), 11),
    (kinds.Integer(), True),
    (kinds.String(3), "abcd"),
    (kinds.Tag(), "a,b"),
])
def test_bad_values_are_refused(kind: kinds.Kind, value: object) -> None:
    with pytest.raises(kinds.BadValue):
        kind(value)


def test_create_fills_declared_defaults_and_requires_required() -> None:
    body = NETWORK.validate_create({"name": "n"}, is_admin=False)
    assert body["admin_state_up"] is True and body["shared"] is False
    assert "mtu" not in body  # computed by the service from the segment
    with pytest.raises(errors.BadRequest, match="Required attribute 'network_id'"):
        SUBNET.validate_create({"cidr": "10.0.0.0/24", "ip_version": 4}, is_admin=False)


def test_unknown_and_read_only_attributes_are_refused() -> None:
    with pytest.raises(errors.BadRequest, match="Unrecognized attribute"):
        NETWORK.validate_create({"colour": "red"}, is_admin=True)
    with pytest.raises(errors.BadRequest, match="not allowed in POST"):
        NETWORK.validate_create({"status": "DOWN"}, is_admin=True)
    with pytest.raises(errors.BadRequest, match="Cannot update read-only attribute"):
        PORT.validate_update({"network_id": "8b0b3a0c-0000-4000-8000-000000000000"},
                             is_admin=True)


def test_admin_only_attributes_are_refused_to_members() -> None:
    with pytest.raises(errors.PolicyNotAuthorized):
        NETWORK.validate_create({"provider:network_type": "vlan"}, is_admin=False)
    with pytest.raises(errors.PolicyNotAuthorized):
        PORT.validate_update({"binding:host_id": "h1"}, is_admin=False)
    assert "binding:host_id" in PORT.hidden_for(is_admin=False)
    assert "binding:host_id" not in PORT.hidden_for(is_admin=True)


def test_conversion_errors_use_upstream_types() -> None:
    with pytest.raises(errors.InvalidInput) as exc:
        NETWORK.validate_create({"admin_state_up": "maybe"}, is_admin=False)
    assert "cannot be converted to boolean" in exc.value.message
    with pytest.raises(errors.BadRequest) as exc2:
        SUBNET.validate_create({"network_id": "8b0b3a0c-0000-4000-8000-000000000000",
                                "cidr": "nope", "ip_version": 4}, is_admin=False)
    assert exc2.value.type == "InvalidInput"
    assert "nope is not in a CIDR format." in exc2.value.message
