"""Settings: defaults, then a TOML file, then ``NEUTRINO_*`` environment variables.

Every setting has a default that makes ``neutrino up`` work on one box; a
real deployment writes a TOML file (see ``docs/configuration.md``) and points
``neutrino serve --config`` at it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: upstream Neutron's default quota limits (-1 means unlimited)
DEFAULT_QUOTAS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
    # FWaaS v2 (neutron-fwaas' defaults)
    "firewall_group": 10,
    "firewall_policy": 10,
    "firewall_rule": 100,
}

#: the load-balancer kinds counted by quota (Octavia's defaults: -1, unlimited)
DEFAULT_LB_QUOTAS: dict[str, int] = {
    "loadbalancer": -1, "listener": -1, "pool": -1, "member": -1, "healthmonitor": -1,
    "l7policy": -1, "l7rule": -1,
}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9696
    data_dir: Path = Path("./data")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``
    database_url: str = ""
    #: "noauth" (trust headers), "embedded" (our own Keystone v3) or "keystone" (external)
    auth: str = "embedded"
    #: lifetime of tokens issued by the embedded identity service, in seconds
    token_ttl: int = 3600
    #: how long a validated token is kept in memory; each use still checks the identity
    #: revision in the database, so a revocation anywhere takes effect at once
    token_cache_seconds: int = 5
    # -- limits on the embedded identity's password authentication --
    #: Keystone's [security_compliance] lockout_failure_attempts: consecutive failed
    #: password authentications after which a user is locked out; 0 is off (as Keystone)
    lockout_failure_attempts: int = 0
    #: Keystone's [security_compliance] lockout_duration: seconds a user stays locked
    #: (0: until an admin enables it or sets its password)
    lockout_duration: int = 1800
    #: Keystone's [identity] max_password_length: longer passwords are refused (400)
    max_password_length: int = 4096
    #: not in Keystone: failed password authentications allowed per source address, and
    #: per user name, in a window of auth_failure_rate_window seconds (then 429); 0 is off
    auth_failure_rate_limit: int = 20
    auth_failure_rate_window: int = 60
    #: the external Keystone (auth = "keystone") and Neutrino's service user in it
    keystone_url: str = ""
    keystone_username: str = "neutron"
    keystone_password: str = ""
    keystone_project: str = "service"
    keystone_user_domain: str = "Default"
    keystone_project_domain: str = "Default"
    #: uvicorn worker processes for ``serve`` (SQLite wants exactly one)
    workers: int = 1
    log_level: str = "info"
    # -- what one HTTP request may be (each refusal is a 4xx in the error envelope) --
    #: bytes of a request's line and headers (414 for a longer URL, 431 for headers)
    max_header_size: int = 65536
    #: bytes of a request body (413; oslo.middleware's option name)
    max_request_body_size: int = 1048576
    #: parameters in a query string (400)
    max_query_params: int = 1000
    # -- segments (type drivers) --
    tenant_network_type: str = "vxlan"
    #: inclusive VNI range for vxlan/geneve tenant networks
    vni_range: tuple[int, int] = (1, 65535)
    #: physical networks and their VLAN ranges ("physnet1" -> (1000, 2999))
    vlan_ranges: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"physnet1": (1000, 2999)})
    flat_networks: tuple[str, ...] = ("physnet1", "public")
    #: MTU of the physical fabric; tenant MTUs subtract the overlay's overhead
    physical_mtu: int = 1500
    # -- drivers (docs/architecture.md, "Drivers"): loaded by name, a built-in one or
    #    "package.module:factory" --
    #: the network types there are, one type driver each (tenant_network_type is one)
    type_drivers: tuple[str, ...] = ("flat", "vlan", "vxlan", "geneve")
    #: the mechanism drivers, in the order they are asked to bind a port; each follows
    #: every network and port change (precommit in its transaction, postcommit after)
    mechanism_drivers: tuple[str, ...] = ("linuxbridge",)
    #: the subnet of each project's HA network (l3-ha; upstream's ``l3_ha_net_cidr``)
    l3_ha_net_cidr: str = "169.254.192.0/18"
    #: the HA networks' type; empty is ``tenant_network_type`` (upstream's
    #: ``l3_ha_network_type``)
    l3_ha_network_type: str = ""
    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    # -- caps on the lists one object holds (upstream's options and defaults): a list
    #    has a cost in every agent and daemon file it reaches (CVE-2014-3555)
    max_dns_nameservers: int = 5
    max_subnet_host_routes: int = 20
    max_fixed_ips_per_port: int = 5
    max_allowed_address_pair: int = 10
    #: extra routes per router (upstream 2026.2 turned it into the router_route quota)
    max_routes: int = 30
    # -- agents and the data plane --
    #: seconds without a heartbeat after which an agent is shown dead (upstream: 75)
    agent_down_time: int = 75
    #: seconds between an agent's heartbeats (upstream: 30)
    agent_report_interval: float = 30.0
    #: how server and agents talk: empty is in-process (``neutrino up``, one host);
    #: ``amqp://user:password@host:5672/vhost`` is RabbitMQ (agents on other hosts)
    bus_url: str = ""
    #: names of the bus's exchanges and queues start with this (several clouds on a broker)
    bus_prefix: str = "neutrino"
    #: the name this host's agent registers under; empty means the machine's hostname
    agent_host: str = ""
    #: the network namespace the agent's bridges and taps live in; empty is the host's own
    #: (tests and sandboxes put a whole "hypervisor" in a namespace)
    agent_netns: str = ""
    #: where the agent keeps daemon files (dnsmasq configs, leases); empty: data_dir/agent
    agent_state_dir: str = ""
    #: the VXLAN underlay address of this host; empty lets the kernel choose (one host)
    vxlan_local_ip: str = ""
    #: VTEPs of the other hosts every VXLAN network floods to (until l2population)
    vxlan_remotes: tuple[str, ...] = ()
    #: physical network -> interface, for flat and VLAN networks ("physnet1:eth1,...")
    physical_interface_mappings: dict[str, str] = field(default_factory=dict)
    #: lease time dnsmasq hands out, in seconds
    dhcp_lease_duration: int = 86400
    dns_domain: str = "openstacklocal"
    #: with no dns_nameservers on a subnet, send no DNS option at all instead of letting
    #: dnsmasq offer itself
    dhcp_omit_dns_when_none: bool = False
    #: physical network -> an existing Linux bridge that flat networks on it use as
    #: their bridge instead of ``brq<net>`` ("public:br-ex"), as upstream's linuxbridge
    bridge_mappings: dict[str, str] = field(default_factory=dict)
    # -- the external network `neutrino up` makes (devstack's convention) --
    #: make it on first start when no external network exists (data plane on)
    create_public_network: bool = True
    public_network_name: str = "public"
    public_subnet_cidr: str = "172.24.4.0/24"
    #: the host holds this address on ``public_bridge``: floating IPs answer the host's shell
    public_gateway_ip: str = "172.24.4.1"
    public_physical_network: str = "public"
    public_bridge: str = "br-ex"
    #: forward and masquerade the public network to the host's own uplink (off: nothing
    #: leaves the machine; on changes the host's forwarding and nftables)
    public_uplink_masquerade: bool = False
    # -- load balancing (the Octavia v2 API, docs/loadbalancer.md) --
    #: provider name -> its description, as ``GET /v2/lbaas/providers`` lists them; each
    #: is served by the built-in API-only provider until the HAProxy data plane comes
    lb_providers: dict[str, str] = field(default_factory=lambda: {
        "noop": "The API-only provider: objects go ACTIVE once committed, no data plane."})
    #: the provider of a load balancer created without one
    lb_default_provider: str = "noop"
    #: "neutron": VIPs are real ports on Neutrino's networks, member subnets are checked;
    #: "noop": nothing is looked up (any UUID is a VIP subnet, no port is made), as
    #: upstream's no-op network driver: for API conformance runs without networks
    lb_network: str = "neutron"
    lb_quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LB_QUOTAS))

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'neutrino.sqlite'}"


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, Path):
        return Path(value)
    if isinstance(current, tuple) and name == "vni_range":
        if isinstance(value, str):
            lo, hi = value.split(":")
            return (int(lo), int(hi))
        return (int(value[0]), int(value[1]))
    if isinstance(current, tuple):
        return tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    if isinstance(current, dict) and name == "vlan_ranges":
        if isinstance(value, str):  # "physnet1:1000:2999,physnet2:10:20"
            out = {}
            for item in filter(None, value.split(",")):
                net, lo, hi = item.split(":")
                out[net] = (int(lo), int(hi))
            return out
        return {k: (int(v[0]), int(v[1])) for k, v in value.items()}
    if isinstance(current, dict) and name in ("physical_interface_mappings", "bridge_mappings"):
        if isinstance(value, str):  # "physnet1:eth1,public:eth2"
            return dict(item.split(":", 1) for item in filter(None, value.split(",")))
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(current, dict) and name == "lb_providers":
        if isinstance(value, str):  # "amphora=The Octavia Amphora driver.;noop=..."
            return dict(item.split("=", 1) for item in filter(None, value.split(";")))
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(current, dict) and name in ("quotas", "lb_quotas"):
        merged = dict(current)
        if isinstance(value, str):  # "network=10,port=50"
            value = dict(item.split("=") for item in filter(None, value.split(",")))
        merged.update({k: int(v) for k, v in value.items()})
        return merged
    return value


#: old spellings still read, by the setting that replaced them
RENAMED = {"max_host_routes": "max_subnet_host_routes"}


def load(config_file: Path | None = None, **overrides: Any) -> Settings:
    settings = Settings()
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            values.update(tomllib.load(fh))
    for f in fields(Settings):
        env = os.environ.get(f"NEUTRINO_{f.name.upper()}")
        if env is not None:
            values[f.name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    for old, new in RENAMED.items():
        if old in values:
            values.setdefault(new, values.pop(old))
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    coerced = {k: _coerce(k, getattr(settings, k), v) for k, v in values.items()}
    return replace(settings, **coerced)
