"""The API extensions this server implements, as ``GET /v2.0/extensions`` lists them.

Only what really works is listed: clients (and tempest) decide what to call
from this list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Extension:
    alias: str
    name: str
    description: str
    updated: str = "2026-01-01T00:00:00-00:00"

    def as_dict(self) -> dict:
        return {"alias": self.alias, "name": self.name, "description": self.description,
                "updated": self.updated, "links": []}


EXTENSIONS: tuple[Extension, ...] = (
    Extension("agent", "agent", "The agent management extension: registered agents, "
              "their heartbeats and liveness"),
    Extension("allowed-address-pairs", "Allowed Address Pairs",
              "Extra addresses a port may send from"),
    Extension("binding", "Port Binding", "Where and how a port is plugged"),
    Extension("default-subnetpools", "Default Subnetpools",
              "is_default subnet pools, and use_default_subnetpool on subnet creation"),
    Extension("dvr", "Distributed Virtual Router",
              "distributed on routers (admins); stored for the data plane, which realises "
              "every router centrally for now"),
    Extension("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
              "enable_snat in a router's external_gateway_info (admins set it)"),
    Extension("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    Extension("extraroute-atomic", "Atomically add/remove extra routes",
              "add_extraroutes and remove_extraroutes on routers"),
    Extension("extra_dhcp_opt", "Neutron Extra DHCP options",
              "Extra DHCP options per port"),
    Extension("external-net", "Neutron external network",
              "Networks marked external for router gateways and floating IPs"),
    Extension("empty-string-filtering", "Empty String Filtering Extension",
              "A filter with an empty value matches empty strings"),
    Extension("fip-port-details", "Floating IP Port Details Extension",
              "Add port_details attribute to Floating IP resource"),
    Extension("filter-validation", "Filter parameters validation",
              "Unknown filter attributes are refused with 400"),
    Extension("fwaas_v2", "Firewall as a Service v2",
              "Firewall rules, policies and groups under /v2.0/fwaas/ on router interface "
              "and instance ports (the API; enforcement is not built yet: docs/firewall.md)"),
    Extension("ip-substring-filtering", "IP address substring filtering",
              "fixed_ips=ip_address_substr= filters ports by part of an address"),
    Extension("l3-ha", "HA Router extension",
              "ha on routers (admins); stored for the data plane, which realises HA later"),
    Extension("l3-port-ip-change-not-allowed",
              "Prevent L3 router ports IP address change extension",
              "The IPv4 address of a router interface cannot be changed through its port"),
    Extension("net-mtu", "Network MTU", "The MTU of a network"),
    Extension("net-mtu-writable", "Network MTU (writable)", "The MTU of a network may be set"),
    Extension("network_availability_zone", "Network Availability Zone",
              "Availability zone hints and zones of networks"),
    Extension("pagination", "Pagination support", "limit, marker and page_reverse"),
    Extension("port-security", "Port Security",
              "Per network and port switch of anti-spoofing and security groups together"),
    Extension("port-security-groups-filtering", "Port filtering on security groups",
              "security_groups=<id> filters ports by their groups"),
    Extension("port-security-split", "Port security split (Neutrino)",
              "anti_spoofing_enabled and security_groups_enabled on ports: each half of "
              "port security on its own (null follows port_security_enabled); see "
              "docs/port-security.md"),
    Extension("project-id", "project_id field enabled", "project_id beside tenant_id"),
    Extension("provider", "Provider Network", "Segment attributes of networks (admins)"),
    Extension("quotas", "Quota management support", "Per-project resource limits"),
    Extension("rbac-policies", "RBAC Policies",
              "Allows creation and modification of policies that control project access to "
              "resources: networks (access_as_shared, access_as_external) and security "
              "groups (access_as_shared)"),
    Extension("rbac-security-groups", "Add security_group type to network RBAC",
              "Security groups shared with projects through RBAC policies"),
    Extension("quota_details", "Quota details management support",
              "Quota limits with usage"),
    Extension("quota-check-limit", "Quota engine limit check",
              "Lowering a limit below the current usage is refused unless forced"),
    Extension("quota-check-limit-default", "Quota engine limit check by default",
              "The limit check is on without asking for it"),
    Extension("revision-if-match", "If-Match constraints based on revision_number",
              "If-Match: revision_number=N on updates and deletes; 412 on mismatch"),
    Extension("router", "Neutron L3 Router",
              "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
              "access to external networks via a NAT gateway; floating IPs"),
    Extension("router-admin-state-down-before-update",
              "Enforce Router's Admin State Down Before Update Extension",
              "Ensure that the admin state of a router is DOWN (admin_state_up=False) before "
              "updating the distributed attribute"),
    Extension("router_availability_zone", "Router Availability Zone",
              "Availability zone hints and zones of routers"),
    Extension("security-group", "security-group",
              "The security groups extension: groups, their rules, and groups on ports"),
    Extension("security-groups-default-rules", "Default rules for security groups",
              "Configure set of security group rules used as default rules for every new "
              "security group"),
    Extension("security-groups-normalized-cidr",
              "Normalized CIDR field for security group rules",
              "normalized_cidr: the network of a rule's remote_ip_prefix"),
    Extension("security-groups-rules-belongs-to-default-sg",
              "Security group rule belongs to the project's default security group",
              "belongs_to_default_sg on security group rules"),
    Extension("security-groups-shared-filtering",
              "Security group filtering on the shared field",
              "shared on security groups, and filtering on it"),
    Extension("sorting", "Sorting support", "sort_key and sort_dir"),
    Extension("standard-attr-description", "standard-attr-description",
              "description on every resource"),
    Extension("standard-attr-revisions", "Resource revision numbers",
              "revision_number on every resource, and If-Match"),
    Extension("standard-attr-tag", "Tag support for resources with standard attribute",
              "tags on every resource, the /tags sub-resource and the tag filters"),
    Extension("subnet-external-network", "Subnet External Network",
              "Informs if the subnet belongs to an external network"),
    Extension("subnet_allocation", "Subnet Allocation",
              "Subnet pools: subnets allocated from a pool's prefixes"),
    Extension("subnetpool-prefix-ops", "Subnet Pool Prefix Operations",
              "add_prefixes and remove_prefixes on subnet pools"),
    Extension("standard-attr-timestamp", "Resource timestamps",
              "created_at and updated_at on every resource"),
    Extension("stateful-security-group", "Stateful security group",
              "Indicates if the security group is stateful or not"),
    Extension("tag-creation", "Tag support for resource creation",
              "tags given when a resource is created"),
)

BY_ALIAS = {e.alias: e for e in EXTENSIONS}
