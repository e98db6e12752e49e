"""The contract of each Networking API resource: networks, subnets, ports.

Extensions are named by the alias that brings an attribute; the list of
extensions the server advertises lives in :mod:`neutrino.schema.extensions`.
"""

from __future__ import annotations

from neutrino.schema.core import REQUIRED, Field, Resource
from neutrino.schema.kinds import (
    Boolean,
    Cidr,
    Dict,
    Integer,
    IpAddress,
    IpOrCidr,
    ListOf,
    MacAddress,
    OneOf,
    Record,
    String,
    Tag,
    Uuid,
)

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed", "accelerator-direct",
              "accelerator-direct-physical")


def standard_fields() -> tuple[Field, ...]:
    """Attributes every resource carries (id, ownership, timestamps, revision, tags)."""
    return (
        Field("id", Uuid(), create=False, update=False),
        Field("name", String(255), default=""),
        Field("description", String(255), default="", extension="standard-attr-description"),
        Field("project_id", String(255), update=False, extension="project-id"),
        Field("tenant_id", String(255), update=False),
        # not filterable upstream either (only sortable)
        Field("created_at", String(), create=False, update=False, filter=False,
              extension="standard-attr-timestamp"),
        Field("updated_at", String(), create=False, update=False, filter=False,
              extension="standard-attr-timestamp"),
        Field("revision_number", Integer(), create=False, update=False,
              extension="standard-attr-revisions"),
        Field("tags", ListOf(Tag(), unique=True), update=False, filter=False, sort=False,
              extension="standard-attr-tag"),
    )


NETWORK = Resource(
    name="network",
    collection="networks",
    fields=(
        *standard_fields(),
        Field("admin_state_up", Boolean(), default=True),
        Field("status", String(), create=False, update=False),
        Field("shared", Boolean(), default=False, admin_write=True, sort=False),
        # the upper bound depends on the segment type: the service checks it
        Field("mtu", Integer(68), extension="net-mtu-writable"),
        Field("subnets", ListOf(Uuid()), create=False, update=False, filter=False, sort=False),
        Field("router:external", Boolean(), default=False, admin_write=True, sort=False,
              extension="external-net"),
        Field("port_security_enabled", Boolean(), default=True, filter=False,
              extension="port-security"),
        # updatable in the contract (so a non-admin PUT is a 403); the service refuses changes
        Field("provider:network_type", String(255), admin_only=True, extension="provider"),
        Field("provider:physical_network", String(64, nullable=True), admin_only=True,
              extension="provider"),
        Field("provider:segmentation_id", Integer(0, 16777215, nullable=True), admin_only=True,
              extension="provider"),
        Field("availability_zone_hints", ListOf(String(255)), default=list, update=False,
              filter=False, sort=False, extension="network_availability_zone"),
        Field("availability_zones", ListOf(String(255)), create=False, update=False,
              filter=False, sort=False, extension="network_availability_zone"),
        Field("ipv4_address_scope", Uuid(nullable=True), create=False, update=False,
              filter=False, sort=False),
        Field("ipv6_address_scope", Uuid(nullable=True), create=False, update=False,
              filter=False, sort=False),
    ),
)

ALLOCATION_POOL = Record({"start": IpAddress(), "end": IpAddress()}, required=("start", "end"))
HOST_ROUTE = Record({"destination": Cidr(), "nexthop": IpAddress()},
                    required=("destination", "nexthop"))

SUBNET = Resource(
    name="subnet",
    collection="subnets",
    fields=(
        *standard_fields(),
        Field("network_id", Uuid(), default=REQUIRED, update=False),
        Field("ip_version", OneOf(4, 6), default=REQUIRED, update=False),
        Field("cidr", Cidr(strict=False), default=REQUIRED, update=False),
        Field("gateway_ip", IpAddress(nullable=True)),
        Field("allocation_pools", ListOf(ALLOCATION_POOL), filter=False, sort=False),
        Field("dns_nameservers", ListOf(IpAddress(), unique=True), default=list, filter=False,
              sort=False),
        Field("host_routes", ListOf(HOST_ROUTE, unique=True), default=list, filter=False,
              sort=False),
        Field("enable_dhcp", Boolean(), default=True),
        Field("ipv6_ra_mode", OneOf(*IPV6_MODES, nullable=True), default=None, update=False),
        Field("ipv6_address_mode", OneOf(*IPV6_MODES, nullable=True), default=None,
              update=False),
        # there are no subnet pools: any id given is one that does not exist
        Field("subnetpool_id", Uuid(nullable=True), default=None, update=False),
        Field("service_types", ListOf(String(255)), default=list, filter=False, sort=False),
        Field("router:external", Boolean(), create=False, update=False, sort=False),
    ),
)

FIXED_IP = Record({"subnet_id": Uuid(), "ip_address": IpAddress()})
ADDRESS_PAIR = Record({"ip_address": IpOrCidr(), "mac_address": MacAddress()},
                      required=("ip_address",))
DHCP_OPTION = Record({"opt_name": String(255), "opt_value": String(255, nullable=True),
                      "ip_version": OneOf(4, 6, nullable=True)},
                     required=("opt_name", "opt_value"))

PORT = Resource(
    name="port",
    collection="ports",
    fields=(
        *standard_fields(),
        Field("network_id", Uuid(), default=REQUIRED, update=False),
        Field("admin_state_up", Boolean(), default=True),
        # who may set it (network owner on create, admin on update) is the service's call
        Field("mac_address", MacAddress()),
        Field("fixed_ips", ListOf(FIXED_IP), sort=False),
        Field("device_id", String(255), default=""),
        Field("device_owner", String(255), default=""),
        Field("status", String(), create=False, update=False),
        Field("port_security_enabled", Boolean(), filter=False, extension="port-security"),
        Field("allowed_address_pairs", ListOf(ADDRESS_PAIR), default=list, filter=False,
              sort=False, extension="allowed-address-pairs"),
        Field("extra_dhcp_opts", ListOf(DHCP_OPTION), default=list, filter=False, sort=False,
              extension="extra_dhcp_opt"),
        # null unbinds (the CLI's ``port unset --host`` sends it), stored as ""
        Field("binding:host_id", String(255, nullable=True), default="", admin_only=True,
              extension="binding"),
        Field("binding:vnic_type", OneOf(*VNIC_TYPES), default="normal", filter=False,
              extension="binding"),
        Field("binding:profile", Dict(nullable=True), default=dict, admin_only=True,
              filter=False, sort=False, extension="binding"),
        Field("binding:vif_type", String(), create=False, update=False, admin_only=True,
              filter=False, extension="binding"),
        Field("binding:vif_details", Dict(), create=False, update=False, admin_only=True,
              filter=False, sort=False, extension="binding"),
    ),
    extra_filters=("fixed_ips",),
)

RESOURCES: dict[str, Resource] = {r.collection: r for r in (NETWORK, SUBNET, PORT)}
