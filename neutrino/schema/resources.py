"""The contract of each Networking API resource: networks, subnets, ports, subnet pools.

Extensions are named by the alias that brings an attribute; the list of
extensions the server advertises lives in :mod:`neutrino.schema.extensions`.
"""

from __future__ import annotations

from dataclasses import replace

from neutrino.schema import firewall, rules
from neutrino.schema.core import REQUIRED, Field, Resource
from neutrino.schema.kinds import (
    MAX_TAGS,
    Boolean,
    Cidr,
    ConfigText,
    DhcpOptionName,
    Dict,
    Integer,
    IpAddress,
    IpOrCidr,
    ListOf,
    MacAddress,
    OneOf,
    OrNothing,
    Prefix,
    PrefixLength,
    Record,
    String,
    Tag,
    Uuid,
)

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed", "accelerator-direct",
              "accelerator-direct-physical")


#: a project's id as every ``project_id`` column stores it; ids from headers and paths
#: (noauth's ``X-Project-Id``, ``/quotas/{project_id}``) are checked by it too
PROJECT_ID = String(255)


def standard_fields() -> tuple[Field, ...]:
    """Attributes every resource carries (id, ownership, timestamps, revision, tags)."""
    return (
        Field("id", Uuid(), create=False, update=False),
        Field("name", String(255), default=""),
        Field("description", String(255), default="", extension="standard-attr-description"),
        Field("project_id", PROJECT_ID, update=False, extension="project-id"),
        Field("tenant_id", PROJECT_ID, update=False),
        # not filterable upstream either (only sortable)
        Field("created_at", String(), create=False, update=False, filter=False,
              extension="standard-attr-timestamp"),
        Field("updated_at", String(), create=False, update=False, filter=False,
              extension="standard-attr-timestamp"),
        Field("revision_number", Integer(), create=False, update=False,
              extension="standard-attr-revisions"),
        Field("tags", ListOf(Tag(), unique=True, max_items=MAX_TAGS), update=False,
              filter=False, sort=False, extension="standard-attr-tag"),
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
        # 0 means the largest the segment allows; below 68 no IPv4 subnet fits (as upstream)
        Field("mtu", Integer(0), extension="net-mtu-writable"),
        Field("subnets", ListOf(Uuid()), create=False, update=False, filter=False, sort=False),
        Field("router:external", Boolean(), default=False, admin_write=True, sort=False,
              extension="external-net"),
        Field("port_security_enabled", Boolean(), default=True, filter=False,
              extension="port-security"),
        # the external network auto-allocated topologies would use; upstream shows it on
        # every network (its auto-allocated-topology API is not implemented here)
        Field("is_default", Boolean(), default=False, admin_write=True, sort=False),
        # updatable in the contract (so a non-admin PUT is a 403); the service refuses changes.
        # Filterable but not sortable, as upstream (its sort_key refuses them too).
        Field("provider:network_type", String(255), admin_only=True, sort=False,
              extension="provider"),
        Field("provider:physical_network", String(64, nullable=True), admin_only=True,
              sort=False, extension="provider"),
        Field("provider:segmentation_id", Integer(0, 16777215, nullable=True), admin_only=True,
              sort=False, extension="provider"),
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
        # required unless the subnet is allocated from a subnet pool (the service checks)
        Field("cidr", Cidr(strict=False), update=False),
        # the size of a subnet allocated from a pool (default: the pool's default_prefixlen)
        Field("prefixlen", Integer(0, 128), update=False, visible=False, filter=False,
              sort=False, extension="subnet_allocation"),
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
        Field("subnetpool_id", Uuid(nullable=True), default=None, update=False,
              extension="subnet_allocation"),
        Field("use_default_subnetpool", Boolean(), update=False, visible=False, filter=False,
              sort=False, extension="default-subnetpools"),
        Field("service_types", ListOf(String(255)), default=list, filter=False, sort=False),
        Field("router:external", Boolean(), create=False, update=False, sort=False),
        # never shown: filters subnets by whether their network is shared (as upstream)
        Field("shared", Boolean(), create=False, update=False, visible=False, sort=False),
    ),
)

FIXED_IP = Record({"subnet_id": Uuid(), "ip_address": IpAddress()})
ADDRESS_PAIR = Record({"ip_address": IpOrCidr(), "mac_address": MacAddress()},
                      required=("ip_address",))
# both reach dnsmasq's options file: its syntax decides what they may hold
DHCP_OPTION = Record({"opt_name": DhcpOptionName(255),
                      "opt_value": ConfigText(255, nullable=True),
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
        # null: none given, which means the project's default group where filtering is on
        Field("security_groups", ListOf(Uuid(), unique=True, nullable=True), sort=False,
              extension="security-group"),
        # each half of port security on its own; null follows port_security_enabled
        # (docs/port-security.md)
        Field("anti_spoofing_enabled", Boolean(nullable=True), filter=False, sort=False,
              extension="port-security-split"),
        Field("security_groups_enabled", Boolean(nullable=True), filter=False, sort=False,
              extension="port-security-split"),
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

SUBNETPOOL = Resource(
    name="subnetpool",
    collection="subnetpools",
    fields=(
        # upstream requires a name for a pool
        *(replace(f, default=REQUIRED) if f.name == "name" else f for f in standard_fields()),
        # merged and normalised (10.0.0.0/24 + 10.0.1.0/24 -> 10.0.0.0/23)
        Field("prefixes", ListOf(Prefix(), unique=True), default=REQUIRED, filter=False,
              sort=False),
        # defaults: min 8 (IPv4) or 64 (IPv6), default = min, max = the address width
        Field("default_prefixlen", PrefixLength()),
        Field("min_prefixlen", PrefixLength()),
        Field("max_prefixlen", PrefixLength()),
        Field("ip_version", OneOf(4, 6), create=False, update=False),
        Field("shared", Boolean(), default=False, update=False, admin_write=True, sort=False),
        Field("is_default", Boolean(), default=False, admin_write=True,
              extension="default-subnetpools"),
        # addresses (IPv4) or /64s (IPv6) a project may take from the pool; null: no limit
        # (upstream refuses null, so a quota once set could never be lifted)
        Field("default_quota", Integer(0, 2**31 - 1, nullable=True), default=None),
        # there are no address scopes: only null is accepted (any id is 404)
        Field("address_scope_id", Uuid(nullable=True), default=None),
    ),
)

RESOURCES: dict[str, Resource] = {r.collection: r for r in (NETWORK, SUBNET, PORT, SUBNETPOOL)}

# -- routers and floating IPs (the router extension family) ---------------------------

EXTERNAL_GATEWAY = Record({"network_id": Uuid(), "enable_snat": Boolean(),
                           "external_fixed_ips": ListOf(FIXED_IP)}, required=("network_id",))

ROUTER = Resource(
    name="router",
    collection="routers",
    fields=(
        *standard_fields(),
        Field("admin_state_up", Boolean(), default=True),
        # filterable and sortable only by what upstream allows
        Field("status", String(), create=False, update=False, filter=False),
        # null or {} removes the gateway; enable_snat and external_fixed_ips are for admins
        # (upstream's policy), which the service checks
        Field("external_gateway_info", OrNothing(EXTERNAL_GATEWAY), default=None, filter=False,
              sort=False, extension="ext-gw-mode"),
        # set by update or the add/remove_extraroutes actions, never on create (as upstream)
        Field("routes", ListOf(HOST_ROUTE, unique=True, nullable=True), create=False,
              filter=False, sort=False, extension="extraroute"),
        # stored for the data plane; null means the default (false)
        Field("distributed", Boolean(nullable=True), admin_only=True, filter=False,
              sort=False, extension="dvr"),
        Field("ha", Boolean(nullable=True), admin_only=True, filter=False, sort=False,
              extension="l3-ha"),
        Field("availability_zone_hints", ListOf(String(255)), default=list, update=False,
              filter=False, sort=False, extension="router_availability_zone"),
        Field("availability_zones", ListOf(String(255)), create=False, update=False,
              filter=False, sort=False, extension="router_availability_zone"),
    ),
)

#: what ``port_details`` shows of a floating IP's port
PORT_DETAILS = Record({"name": String(), "network_id": Uuid(), "mac_address": String(),
                       "admin_state_up": Boolean(), "status": String(),
                       "device_id": String(), "device_owner": String()})

FLOATINGIP = Resource(
    name="floatingip",
    collection="floatingips",
    fields=(
        # a floating IP has no name
        *(f for f in standard_fields() if f.name != "name"),
        Field("floating_network_id", Uuid(), default=REQUIRED, update=False),
        # a specific address is for admins (and project managers), which the service checks
        Field("floating_ip_address", IpAddress(nullable=True), default=None, update=False),
        # input only: the external subnet to take the address from
        Field("subnet_id", Uuid(nullable=True), default=None, update=False, visible=False,
              filter=False, sort=False),
        Field("port_id", Uuid(nullable=True), default=None, sort=False),
        Field("fixed_ip_address", IpAddress(nullable=True), default=None),
        Field("router_id", Uuid(nullable=True), create=False, update=False),
        Field("status", String(), create=False, update=False),
        Field("port_details", OrNothing(PORT_DETAILS), create=False, update=False,
              filter=False, sort=False, extension="fip-port-details"),
    ),
)

RESOURCES.update({r.collection: r for r in (ROUTER, FLOATINGIP)})

# Agents register themselves over the bus; the API only shows, disables and removes
# them (admins only, as upstream).
AGENT = Resource(
    name="agent",
    collection="agents",
    fields=(
        Field("id", Uuid(), create=False, update=False),
        Field("agent_type", String(255), create=False, update=False, extension="agent"),
        Field("binary", String(255), create=False, update=False, extension="agent"),
        Field("topic", String(255), create=False, update=False, extension="agent"),
        Field("host", String(255), create=False, update=False, extension="agent"),
        Field("admin_state_up", Boolean(), create=False, extension="agent"),
        Field("alive", Boolean(), create=False, update=False, sort=False, extension="agent"),
        Field("availability_zone", String(255, nullable=True), create=False, update=False,
              extension="agent"),
        Field("description", String(255, nullable=True), create=False, extension="agent"),
        Field("heartbeat_timestamp", String(), create=False, update=False, filter=False,
              extension="agent"),
        Field("started_at", String(), create=False, update=False, filter=False,
              extension="agent"),
        Field("created_at", String(), create=False, update=False, filter=False,
              extension="agent"),
        Field("configurations", Dict(), create=False, update=False, filter=False, sort=False,
              extension="agent"),
    ),
)
RESOURCES[AGENT.collection] = AGENT

# -- security groups, their default rules, and sharing (RBAC) --------------------------

SG_RULE_ATTRS = (
    Field("direction", OneOf("ingress", "egress"), default=REQUIRED, update=False),
    Field("ethertype", rules.Ethertype(), default="IPv4", update=False),
    # normalised on the way in (see neutrino.schema.rules): 6 -> tcp, "any" -> null
    Field("protocol", rules.Protocol(), default=None, update=False),
    Field("port_range_min", rules.PortNumber(), default=None, update=False),
    Field("port_range_max", rules.PortNumber(), default=None, update=False),
    Field("remote_ip_prefix", rules.RemoteIpPrefix(), default=None, update=False),
    # there are no address groups: always null (an id is 404), not advertised
    Field("remote_address_group_id", Uuid(nullable=True), default=None, update=False),
)

SECURITY_GROUP = Resource(
    name="security_group",
    collection="security_groups",
    path="security-groups",
    fields=(
        *standard_fields(),
        Field("stateful", Boolean(), default=True, extension="stateful-security-group"),
        # shared with the caller (RBAC to it or to "*")
        Field("shared", Boolean(), create=False, update=False, sort=False,
              extension="security-groups-shared-filtering"),
        Field("security_group_rules", ListOf(Dict()), create=False, update=False,
              filter=False, sort=False),
    ),
)

SECURITY_GROUP_RULE = Resource(
    name="security_group_rule",
    collection="security_group_rules",
    path="security-group-rules",
    fields=(
        # a rule has no name; only its description may change
        *(f for f in standard_fields() if f.name != "name"),
        # any text: a group that does not exist (for the caller) is a 404, as upstream
        Field("security_group_id", String(255), default=REQUIRED, update=False),
        # the rule names its remote group once; members are never expanded into rows
        Field("remote_group_id", String(255, nullable=True), default=None, update=False),
        *SG_RULE_ATTRS,
        Field("normalized_cidr", String(64, nullable=True), create=False, update=False,
              extension="security-groups-normalized-cidr"),
        Field("belongs_to_default_sg", Boolean(), create=False, update=False, sort=False,
              extension="security-groups-rules-belongs-to-default-sg"),
    ),
)

DEFAULT_SECURITY_GROUP_RULE = Resource(
    name="default_security_group_rule",
    collection="default_security_group_rules",
    path="default-security-group-rules",
    fields=(
        Field("id", Uuid(), create=False, update=False),
        Field("description", String(255), default="", update=False, sort=False,
              extension="security-groups-default-rules"),
        # "PARENT": the group the rule is copied into
        Field("remote_group_id", String(255, nullable=True), default=None, update=False),
        *SG_RULE_ATTRS,
        Field("used_in_default_sg", Boolean(), default=False, update=False, sort=False),
        Field("used_in_non_default_sg", Boolean(), default=True, update=False, sort=False),
    ),
)

RBAC_POLICY = Resource(
    name="rbac_policy",
    collection="rbac_policies",
    path="rbac-policies",
    fields=(
        Field("id", Uuid(), create=False, update=False),
        Field("project_id", PROJECT_ID, update=False, extension="project-id"),
        Field("tenant_id", PROJECT_ID, update=False),
        Field("object_type", rules.ObjectType("network", "security_group"), default=REQUIRED,
              update=False),
        Field("object_id", Uuid(), default=REQUIRED, update=False),
        # which actions an object type has is the service's call (InvalidActionForType)
        Field("action", String(255), default=REQUIRED, update=False),
        Field("target_tenant", rules.TargetProject(), default=REQUIRED),
    ),
)

RESOURCES.update({r.url_path: r for r in (SECURITY_GROUP, SECURITY_GROUP_RULE,
                                          DEFAULT_SECURITY_GROUP_RULE, RBAC_POLICY)})

# -- FWaaS v2: firewall rules, policies and groups (under /v2.0/fwaas/) ------------------

FIREWALL_RULE = Resource(
    name="firewall_rule",
    collection="firewall_rules",
    path="fwaas/firewall_rules",
    fields=(
        *standard_fields(),
        # normalised on the way in (neutrino.schema.firewall): "TCP" -> tcp, "any" -> null
        Field("protocol", firewall.FirewallProtocol(), default=None, extension="fwaas_v2"),
        Field("ip_version", OneOf(4, 6), default=4, extension="fwaas_v2"),
        Field("source_ip_address", firewall.FirewallAddress(), default=None,
              extension="fwaas_v2"),
        Field("destination_ip_address", firewall.FirewallAddress(), default=None,
              extension="fwaas_v2"),
        # a port or "lo:hi"; 0 and null: any
        Field("source_port", firewall.FirewallPort(), default=None, extension="fwaas_v2"),
        Field("destination_port", firewall.FirewallPort(), default=None,
              extension="fwaas_v2"),
        Field("action", firewall.FirewallAction(), default="deny", extension="fwaas_v2"),
        Field("enabled", Boolean(), default=True, extension="fwaas_v2"),
        Field("shared", Boolean(), default=False, admin_write=True, extension="fwaas_v2"),
        # the policies holding the rule (read-only: policies say which rules they hold)
        Field("firewall_policy_id", ListOf(Uuid()), create=False, update=False,
              filter=False, sort=False, extension="fwaas_v2"),
    ),
)

FIREWALL_POLICY = Resource(
    name="firewall_policy",
    collection="firewall_policies",
    path="fwaas/firewall_policies",
    fields=(
        *standard_fields(),
        # in order: the first rule that matches decides
        # null: none
        Field("firewall_rules", firewall.IdList(Uuid(), unique=True), default=list,
              sort=False, extension="fwaas_v2"),
        # set by the owner once reviewed; any change of the rules resets it
        Field("audited", Boolean(), default=False, extension="fwaas_v2"),
        Field("shared", Boolean(), default=False, admin_write=True, extension="fwaas_v2"),
    ),
)

FIREWALL_GROUP = Resource(
    name="firewall_group",
    collection="firewall_groups",
    path="fwaas/firewall_groups",
    fields=(
        *standard_fields(),
        Field("ingress_firewall_policy_id", Uuid(nullable=True), default=None,
              extension="fwaas_v2"),
        Field("egress_firewall_policy_id", Uuid(nullable=True), default=None,
              extension="fwaas_v2"),
        # router interface ports and instance ports, each in one group at most; filters:
        # holding any of these
        Field("ports", firewall.IdList(Uuid(), unique=True), default=list, sort=False,
              extension="fwaas_v2"),
        Field("admin_state_up", Boolean(), default=True, extension="fwaas_v2"),
        # INACTIVE without ports; what the firewall driver reported otherwise (with the
        # built-in noop driver ACTIVE means accepted, not enforced: docs/firewall.md)
        Field("status", String(), create=False, update=False, extension="fwaas_v2"),
        Field("shared", Boolean(), default=False, admin_write=True, extension="fwaas_v2"),
    ),
)

RESOURCES.update({r.url_path: r for r in (FIREWALL_RULE, FIREWALL_POLICY, FIREWALL_GROUP)})

#: the bodies of resources' own verbs (``PUT /{collection}/{id}/{action}``) that the
#: OpenAPI document describes, by collection path; the services check them as declared
ACTIONS: dict[str, dict[str, Record]] = {
    FIREWALL_POLICY.url_path: {
        # before insert_before, else after insert_after, else first
        "insert_rule": Record({"firewall_rule_id": Uuid(),
                               "insert_before": Uuid(nullable=True),
                               "insert_after": Uuid(nullable=True)},
                              required=("firewall_rule_id",)),
        "remove_rule": Record({"firewall_rule_id": Uuid()}, required=("firewall_rule_id",)),
    },
}
