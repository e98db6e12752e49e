"""The load-balancer family's contract (Octavia v2), declared once.

Each kind of object (load balancer, listener, pool, member, health monitor, L7 policy,
L7 rule) is one :class:`LbKind` holding its :class:`Attr` declarations: what a POST
and a PUT may carry, defaults, which attributes are columns of its table (the rest
live in its ``attrs`` JSON), and from that the request checks and the OpenAPI
document.  The rules that tie attributes together (a cookie name only for
APP_COOKIE, a monitor's timeout within its delay, ...) are in ``rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neutrino import errors
from neutrino.schema.kinds import (
    BadValue,
    Boolean,
    Cidr,
    Dict,
    Integer,
    IpAddress,
    Kind,
    ListOf,
    OneOf,
    Record,
    String,
    Tag,
    Uuid,
)


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: no default: an attribute a POST leaves out is left to the service (or ``null``)
OMIT = _Omit()

PROVISIONING = ("ACTIVE", "DELETED", "ERROR", "PENDING_CREATE", "PENDING_UPDATE",
                "PENDING_DELETE")
OPERATING = ("ONLINE", "DRAINING", "OFFLINE", "DEGRADED", "ERROR", "NO_MONITOR")
LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP",
                      "PROMETHEUS")
POOL_PROTOCOLS = ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP")
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
PERSISTENCE = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
MONITOR_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT",
                "TRACE")
L7_ACTIONS = ("REDIRECT_TO_POOL", "REDIRECT_TO_URL", "REDIRECT_PREFIX", "REJECT")
L7_RULE_TYPES = ("HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE", "SSL_CONN_HAS_CERT",
                 "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
L7_COMPARE = ("REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
MAX_TIMEOUT = 31536000  # a year, in milliseconds' unit as upstream bounds it
MAX_INT = 2147483647


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    kind: Callable[[Any], Any]
    create: bool = True
    update: bool = True
    default: Any = OMIT
    required: bool = False
    #: only admins may set it
    admin_write: bool = False
    #: a column of the kind's table (else a key of its ``attrs`` JSON)
    column: bool = False

    def convert(self, value: Any) -> Any:
        try:
            return self.kind(value)
        except BadValue as exc:
            raise errors.BadRequest(f"Invalid input for field/attribute {self.name}. "
                                    f"Value: '{value}'. {exc.message}") from None

    def json_schema(self) -> dict:
        return self.kind.json_schema() if isinstance(self.kind, Kind) else {}


@dataclass(frozen=True)
class LbKind:
    name: str          # "loadbalancer"
    collection: str    # "loadbalancers"
    #: the words of its errors ("Load Balancer", "Health Monitor")
    title: str
    attrs: tuple[Attr, ...]
    #: the attribute naming its parent, if it has one in the body
    parent: str | None = None
    by_name: dict[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {a.name: a for a in self.attrs})

    def _check_keys(self, item: Any, op: str, is_admin: bool) -> dict:
        if not isinstance(item, dict):
            raise errors.BadRequest(f"Invalid input for field/attribute {self.name}. "
                                    f"Value: '{item}'. Value should be an object")
        for key in item:
            spec = self.by_name.get(key)
            if spec is None or not (spec.create if op == "POST" else spec.update):
                raise errors.BadRequest(f"Invalid input for field/attribute {key}. "
                                        f"Value: '{item[key]}'. Unknown attribute for "
                                        f"argument {self.name}: {key}")
            if spec.admin_write and not is_admin:
                raise errors.PolicyNotAuthorized(f"{self.name}:{key}")
        return item

    def validate_create(self, body: Any, *, is_admin: bool) -> dict:
        item = self._check_keys(_unwrap(body, self.name), "POST", is_admin)
        out: dict[str, Any] = {}
        for spec in self.attrs:
            if not spec.create:
                continue
            if spec.name in item:
                out[spec.name] = spec.convert(item[spec.name])
            elif spec.required:
                raise errors.BadRequest(f"Invalid input for field/attribute {spec.name}. "
                                        f"Value: 'None'. Mandatory field missing.")
            elif spec.default is not OMIT:
                out[spec.name] = spec.default() if callable(spec.default) else spec.default
        return out

    def validate_update(self, body: Any, *, is_admin: bool) -> dict:
        item = self._check_keys(_unwrap(body, self.name), "PUT", is_admin)
        return {k: self.by_name[k].convert(v) for k, v in item.items()}

    def request_schema(self, op: str) -> dict:
        props = {a.name: a.json_schema() for a in self.attrs
                 if (a.create if op == "POST" else a.update)}
        required = [a.name for a in self.attrs if a.required] if op == "POST" else []
        inner = {"type": "object", "properties": props, "required": required,
                 "additionalProperties": False}
        return {"type": "object", "properties": {self.name: inner}, "required": [self.name],
                "additionalProperties": False}


def _unwrap(body: Any, name: str) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. Value: "
                                f"'{body}'. Mandatory field missing.")
    return body[name]


class Text(String):
    """A string that may also be null (Octavia's optional strings)."""

    def __init__(self, max_len: int | None = 255) -> None:
        super().__init__(max_len, nullable=True)


class Name(String):
    """A name or description: null reads as empty, as upstream stores it."""

    def __init__(self, max_len: int = 255) -> None:
        super().__init__(max_len, nullable=True)

    def __call__(self, value: Any) -> Any:
        return "" if value is None else super().__call__(value)


class IpText(IpAddress):
    """An address, kept as the client spelled it (upstream answers it back so)."""

    def convert(self, value: Any) -> str:
        super().convert(value)
        return value


class Timeout(Integer):
    def __init__(self) -> None:
        super().__init__(0, MAX_TIMEOUT, nullable=True)


class HeaderMap(Dict):
    """``insert_headers``: header name -> text (``"true"``)."""

    def convert(self, value: Any) -> dict:
        out = super().convert(value)
        for key, text in out.items():
            if not isinstance(text, str) or len(text) > 255 or len(key) > 255:
                raise BadValue(f"'{key}' must map to a string")
        return out


#: upstream sets no limit; 100 is what its own tests send at most
TAGS = ListOf(Tag(), max_items=100)
ADMIN_STATE = Attr("admin_state_up", Boolean(), default=True, column=True)
NAME = Attr("name", Name(), default="", column=True)
DESCRIPTION = Attr("description", Name(), default="", column=True)
PROJECT = Attr("project_id", String(255), update=False)
TAG_ATTR = Attr("tags", TAGS, default=list, column=True)
OPT_UUID = Uuid(nullable=True)
TLS_LIST = ListOf(OneOf(*TLS_VERSIONS), unique=True, nullable=True)
ALPN = ListOf(OneOf("http/1.0", "http/1.1", "h2"), unique=True, nullable=True)
CIPHERS = Text(2048)
REF = Text(255)

LOADBALANCER = LbKind("loadbalancer", "loadbalancers", "Load Balancer", (
    NAME, DESCRIPTION, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("vip_address", IpText(nullable=True), update=False, column=True),
    Attr("vip_port_id", OPT_UUID, update=False, column=True),
    Attr("vip_subnet_id", OPT_UUID, update=False, column=True),
    Attr("vip_network_id", OPT_UUID, update=False, column=True),
    Attr("vip_qos_policy_id", OPT_UUID),
    Attr("vip_sg_ids", ListOf(Uuid(), unique=True, nullable=True)),
    Attr("vip_vnic_type", OneOf("normal", "direct"), create=False, update=False),
    Attr("additional_vips", ListOf(Record({"subnet_id": Uuid(), "ip_address":
                                           IpAddress(nullable=True)},
                                          required=("subnet_id",)), max_items=8),
         update=False, default=list),
    Attr("provider", String(64, nullable=True), update=False, column=True),
    Attr("flavor_id", OPT_UUID, update=False, column=True),
    Attr("availability_zone", String(255, nullable=True), update=False, column=True),
))

LISTENER = LbKind("listener", "listeners", "Listener", (
    NAME, DESCRIPTION, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("loadbalancer_id", Uuid(), update=False, required=True, column=True),
    Attr("protocol", OneOf(*LISTENER_PROTOCOLS), update=False, required=True, column=True),
    Attr("protocol_port", Integer(1, 65535), update=False, required=True, column=True),
    Attr("connection_limit", Integer(-1, MAX_INT, nullable=True), default=-1),
    Attr("default_pool_id", OPT_UUID, column=True),
    Attr("default_tls_container_ref", REF),
    Attr("sni_container_refs", ListOf(String(255), unique=True, nullable=True),
         default=list),
    Attr("insert_headers", HeaderMap(nullable=True), default=dict),
    Attr("timeout_client_data", Timeout(), default=50000),
    Attr("timeout_member_connect", Timeout(), default=5000),
    Attr("timeout_member_data", Timeout(), default=50000),
    Attr("timeout_tcp_inspect", Timeout(), default=0),
    Attr("client_ca_tls_container_ref", REF),
    Attr("client_authentication", OneOf("NONE", "OPTIONAL", "MANDATORY"), default="NONE"),
    Attr("client_crl_container_ref", REF),
    Attr("allowed_cidrs", ListOf(Cidr(), unique=True, nullable=True)),
    Attr("tls_ciphers", CIPHERS),
    Attr("tls_versions", TLS_LIST),
    Attr("alpn_protocols", ALPN),
    Attr("hsts_max_age", Integer(0, MAX_INT, nullable=True)),
    Attr("hsts_include_subdomains", Boolean(), default=False),
    Attr("hsts_preload", Boolean(), default=False),
), parent="loadbalancer_id")

SESSION_PERSISTENCE = Record({
    "type": OneOf(*PERSISTENCE), "cookie_name": Text(255),
    "persistence_timeout": Integer(0, MAX_INT, nullable=True),
    "persistence_granularity": IpAddress(nullable=True),
}, required=("type",))


class Persistence(Kind):
    """``session_persistence``: an object as above, or null (none)."""

    nullable = True

    def convert(self, value: Any) -> Any:
        return SESSION_PERSISTENCE(value) if value != {} else None

    def json_schema(self) -> dict:
        return {"anyOf": [SESSION_PERSISTENCE.json_schema(), {"type": "null"}]}


POOL = LbKind("pool", "pools", "Pool", (
    NAME, DESCRIPTION, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("loadbalancer_id", OPT_UUID, update=False),
    Attr("listener_id", OPT_UUID, update=False),
    Attr("protocol", OneOf(*POOL_PROTOCOLS), update=False, required=True, column=True),
    Attr("lb_algorithm", OneOf(*ALGORITHMS), required=True, column=True),
    Attr("session_persistence", Persistence()),
    Attr("tls_enabled", Boolean(), default=False),
    Attr("tls_container_ref", REF),
    Attr("ca_tls_container_ref", REF),
    Attr("crl_container_ref", REF),
    Attr("tls_ciphers", CIPHERS),
    Attr("tls_versions", TLS_LIST),
    Attr("alpn_protocols", ALPN),
))

MEMBER = LbKind("member", "members", "Member", (
    NAME, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("address", IpText(), update=False, required=True, column=True),
    Attr("protocol_port", Integer(1, 65535), update=False, required=True, column=True),
    Attr("weight", Integer(0, 256, nullable=True), default=1),
    Attr("backup", Boolean(), default=False),
    Attr("subnet_id", OPT_UUID, update=False, column=True),
    Attr("monitor_address", IpText(nullable=True)),
    Attr("monitor_port", Integer(1, 65535, nullable=True)),
    Attr("request_sriov", Boolean(), update=False, default=False),
))

HEALTHMONITOR = LbKind("healthmonitor", "healthmonitors", "Health Monitor", (
    NAME, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("pool_id", Uuid(), update=False, required=True, column=True),
    Attr("type", OneOf(*MONITOR_TYPES), update=False, required=True, column=True),
    Attr("delay", Integer(0, MAX_INT), required=True),
    Attr("timeout", Integer(0, MAX_INT), required=True),
    Attr("max_retries", Integer(1, 10), required=True),
    Attr("max_retries_down", Integer(1, 10), default=3),
    Attr("http_method", OneOf(*HTTP_METHODS, nullable=True)),
    Attr("url_path", Text(2048)),
    Attr("expected_codes", Text(64)),
    Attr("http_version", OneOf(1.0, 1.1, nullable=True)),
    Attr("domain_name", Text(255)),
), parent="pool_id")

L7POLICY = LbKind("l7policy", "l7policies", "L7 Policy", (
    NAME, DESCRIPTION, ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("listener_id", Uuid(), update=False, required=True, column=True),
    Attr("action", OneOf(*L7_ACTIONS), required=True, column=True),
    Attr("position", Integer(1, MAX_INT), column=True),
    Attr("redirect_pool_id", OPT_UUID, column=True),
    Attr("redirect_url", Text(255)),
    Attr("redirect_prefix", Text(255)),
    Attr("redirect_http_code", OneOf(301, 302, 303, 307, 308, nullable=True)),
), parent="listener_id")

L7RULE = LbKind("rule", "rules", "L7 Rule", (
    ADMIN_STATE, PROJECT, TAG_ATTR,
    Attr("type", OneOf(*L7_RULE_TYPES), required=True, column=True),
    Attr("compare_type", OneOf(*L7_COMPARE), required=True),
    Attr("key", Text(255)),
    Attr("value", String(255), required=True),
    Attr("invert", Boolean(), default=False),
))

#: the kinds, by the name the provider seam and the status tree use
KINDS: dict[str, LbKind] = {
    "loadbalancer": LOADBALANCER, "listener": LISTENER, "pool": POOL, "member": MEMBER,
    "healthmonitor": HEALTHMONITOR, "l7policy": L7POLICY, "l7rule": L7RULE,
}

# -- flavors and availability zones (admin objects, no statuses) -----------------------

FLAVOR_PROFILE = LbKind("flavorprofile", "flavorprofiles", "Flavor profile", (
    Attr("name", String(255), required=True),
    Attr("provider_name", String(64), required=True),
    Attr("flavor_data", String(4096), required=True),
))
FLAVOR = LbKind("flavor", "flavors", "Flavor", (
    Attr("name", String(255), required=True),
    Attr("description", Name(), default=""),
    Attr("enabled", Boolean(), default=True),
    Attr("flavor_profile_id", Uuid(), required=True, update=False),
))
AZ_PROFILE = LbKind("availability_zone_profile", "availability_zone_profiles",
                    "Availability zone profile", (
    Attr("name", String(255), required=True),
    Attr("provider_name", String(64), required=True),
    Attr("availability_zone_data", String(4096), required=True),
))
AVAILABILITY_ZONE = LbKind("availability_zone", "availability_zones",
                           "Availability zone", (
    Attr("name", String(255), required=True, update=False),
    Attr("description", Name(), default=""),
    Attr("enabled", Boolean(), default=True),
    Attr("availability_zone_profile_id", Uuid(), required=True, update=False),
))

QUOTA_KINDS = ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
               "l7rule")
QUOTA = LbKind("quota", "quotas", "Quota", tuple(
    Attr(name, Integer(-1, MAX_INT, nullable=True)) for name in
    (*QUOTA_KINDS, "load_balancer", "health_monitor")))
