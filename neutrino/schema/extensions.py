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
    Extension("allowed-address-pairs", "Allowed Address Pairs",
              "Extra addresses a port may send from"),
    Extension("binding", "Port Binding", "Where and how a port is plugged"),
    Extension("extra_dhcp_opt", "Neutron Extra DHCP options",
              "Extra DHCP options per port"),
    Extension("external-net", "Neutron external network",
              "Networks marked external for router gateways and floating IPs"),
    Extension("empty-string-filtering", "Empty String Filtering Extension",
              "A filter with an empty value matches empty strings"),
    Extension("filter-validation", "Filter parameters validation",
              "Unknown filter attributes are refused with 400"),
    Extension("ip-substring-filtering", "IP address substring filtering",
              "fixed_ips=ip_address_substr= filters ports by part of an address"),
    Extension("net-mtu", "Network MTU", "The MTU of a network"),
    Extension("net-mtu-writable", "Network MTU (writable)", "The MTU of a network may be set"),
    Extension("network_availability_zone", "Network Availability Zone",
              "Availability zone hints and zones of networks"),
    Extension("pagination", "Pagination support", "limit, marker and page_reverse"),
    Extension("port-security", "Port Security", "Per network and port anti-spoofing switch"),
    Extension("project-id", "project_id field enabled", "project_id beside tenant_id"),
    Extension("provider", "Provider Network", "Segment attributes of networks (admins)"),
    Extension("quotas", "Quota management support", "Per-project resource limits"),
    Extension("quota_details", "Quota details management support",
              "Quota limits with usage"),
    Extension("quota-check-limit", "Quota engine limit check",
              "Lowering a limit below the current usage is refused unless forced"),
    Extension("quota-check-limit-default", "Quota engine limit check by default",
              "The limit check is on without asking for it"),
    Extension("revision-if-match", "If-Match constraints based on revision_number",
              "If-Match: revision_number=N on updates and deletes; 412 on mismatch"),
    Extension("sorting", "Sorting support", "sort_key and sort_dir"),
    Extension("standard-attr-description", "standard-attr-description",
              "description on every resource"),
    Extension("standard-attr-revisions", "Resource revision numbers",
              "revision_number on every resource, and If-Match"),
    Extension("standard-attr-tag", "Tag support for resources with standard attribute",
              "tags on every resource, the /tags sub-resource and the tag filters"),
    Extension("standard-attr-timestamp", "Resource timestamps",
              "created_at and updated_at on every resource"),
    Extension("tag-creation", "Tag support for resource creation",
              "tags given when a resource is created"),
)

BY_ALIAS = {e.alias: e for e in EXTENSIONS}
