"""The ``neutrino`` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from neutrino import config
from neutrino.config import Settings
from neutrino.db import migrate
from neutrino.db.engine import Database

if TYPE_CHECKING:
    from neutrino.agent.l3.external import ExternalConfig

log = logging.getLogger("neutrino")


def _uvicorn_kwargs(settings: Settings) -> dict:
    # httptools, with the parser's refusals in the error envelope (neutrino/api/http.py);
    # the head limit travels in uvicorn's setting for it
    return {"host": settings.host, "port": settings.port, "loop": "uvloop",
            "http": "neutrino.api.http:HttpToolsEnvelope",
            "h11_max_incomplete_event_size": settings.max_header_size,
            "access_log": False, "log_level": settings.log_level,
            "timeout_graceful_shutdown": 5}


def _run(app: object, settings: Settings) -> None:
    """Serve in the foreground; SIGINT and SIGTERM both end in a clean exit 0."""
    # uvicorn drains connections on either signal, then re-raises it: turn that
    # last raise into an ordinary exit so service managers see success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, **_uvicorn_kwargs(settings))  # type: ignore[arg-type]


def write_clouds_yaml(settings: Settings) -> Path:
    """A noauth clouds.yaml for the stock ``openstack`` CLI (cloud name ``neutrino``)."""
    from neutrino.files import write_atomic

    url = f"http://{settings.host}:{settings.port}"
    path = settings.data_dir / "clouds.yaml"
    # private like the embedded identity's, which it replaces when auth changes
    write_atomic(path, mode=0o600, data=(
        "clouds:\n"
        "  neutrino:\n"
        "    auth_type: none\n"
        "    auth:\n"
        f"      endpoint: {url}\n"
        f"    network_endpoint_override: {url}\n"))
    return path


def cmd_up(args: argparse.Namespace) -> int:
    settings = config.load(args.config, host=args.host, port=args.port,
                           data_dir=args.data_dir, auth=args.auth)
    from neutrino.server import build, prepare_data_dir

    prepare_data_dir(settings)  # clouds.yaml lives there whatever the database
    app, db = build(settings, migrate_in_child=True)
    url = f"http://{settings.host}:{settings.port}"
    if settings.auth == "embedded":
        from neutrino.identity.bootstrap import ensure_admin
        from neutrino.identity.store import Identity

        clouds = ensure_admin(db, Identity(settings.token_ttl), settings.data_dir, url)
    else:
        clouds = write_clouds_yaml(settings)
    print(f"Neutrino is serving the Networking API on {url}  (data in {settings.data_dir})",
          flush=True)
    agent = None
    if not args.no_dataplane:
        agent, note = _start_agent(app, settings, db)
        print(f"  data plane: {note}", flush=True)
    print(f"  point the openstack CLI at it:\n"
          f"    export OS_CLIENT_CONFIG_FILE={clouds.resolve()} OS_CLOUD=neutrino\n"
          f"    openstack network list\n"
          f"  stop with Ctrl-C", flush=True)
    try:
        _run(app, settings)
    finally:
        if agent is not None:
            agent.stop()  # the data plane itself keeps running
        app.state.bus.close()  # type: ignore[attr-defined]
        db.dispose()
    return 0


def _start_agent(app: object, settings: Settings,
                 db: Database | None = None) -> tuple[object | None, str]:
    """The host agent, in this process, talking to the server over the in-process bus."""
    import shutil

    if os.geteuid() != 0:
        return None, "off (the agent needs root; run as root, or pass --no-dataplane)"
    missing = [tool for tool in ("ip", "dnsmasq") if shutil.which(tool) is None]
    if missing:
        return None, f"off (missing {', '.join(missing)}: scripts/install-system-packages.sh)"
    from neutrino.agent.agent import Agent

    public, external = "", None
    if settings.create_public_network and db is not None:
        settings, external, public = _public_network(app, db, settings)
    agent = Agent(app.state.bus, settings, external=external)  # type: ignore[attr-defined]
    agent.start()
    where = f" in netns {agent.netns}" if agent.netns else ""
    return agent, (f"agent for host {agent.host!r}{where} (Linux bridges, VXLAN, dnsmasq, "
                   f"routers); try `neutrino instance boot vm1 --network NET`{public}")


def _public_network(app: object, db: Database,
                    settings: Settings) -> tuple[Settings, ExternalConfig | None, str]:
    """The external network (made on first start) and what its host side is (the
    bridge with the gateway address, which the agent reconciles); the settings the
    agent runs with, and a line for the user."""
    from dataclasses import replace

    from neutrino.agent.l3.external import ExternalConfig
    from neutrino.services.l3.public_network import ensure_public_network

    public = ensure_public_network(db, app.state.services, settings)  # type: ignore[attr-defined]
    if public is None or public.physical_network is None:
        return settings, None, ""  # the operator's own external networks: not ours to wire
    mappings = dict(settings.bridge_mappings)
    if public.physical_network not in settings.physical_interface_mappings:
        mappings.setdefault(public.physical_network, settings.public_bridge)
    settings = replace(settings, bridge_mappings=mappings)
    bridge = mappings.get(public.physical_network)
    if bridge is None or public.cidr is None or public.gateway_ip is None:
        return settings, None, ""
    external = ExternalConfig(bridge, public.gateway_ip, public.cidr, settings.physical_mtu,
                              settings.public_uplink_masquerade, settings.agent_netns or None)
    uplink = "not forwarded beyond this host"
    if settings.public_uplink_masquerade:
        uplink = "masqueraded to this host's uplink (public_uplink_masquerade)"
    made = "made now" if public.made else "exists"
    return settings, external, (f"\n  external network {settings.public_network_name!r} ({made}): "
                      f"{public.cidr} on {bridge}, this host is {public.gateway_ip}; "
                      f"{uplink}")


def cmd_agent(args: argparse.Namespace) -> int:
    """This host's agent as a process of its own, talking to the server over AMQP."""
    import shutil
    import threading

    settings = config.load(args.config)
    if not settings.bus_url:
        print("neutrino agent talks to the server through RabbitMQ: set bus_url (e.g. "
              "bus_url = \"amqp://guest:guest@127.0.0.1:5672/\", the server's too); "
              "`neutrino up` runs the agent in-process without it", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("neutrino agent needs root: it makes bridges, taps and namespaces",
              file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "dnsmasq") if shutil.which(tool) is None]
    if missing:
        print(f"neutrino agent: missing {', '.join(missing)} "
              f"(scripts/install-system-packages.sh)", file=sys.stderr)
        return 2
    from neutrino.agent.agent import Agent
    from neutrino.bus.amqp import AmqpBus, redact

    host = settings.agent_host or os.uname().nodename
    bus = AmqpBus(settings.bus_url, prefix=settings.bus_prefix, name=f"neutrino-agent@{host}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent = Agent(bus, settings)
    thread = agent.start()
    where = f" in netns {agent.netns}" if agent.netns else ""
    print(f"neutrino agent for host {agent.host!r}{where} on {redact(settings.bus_url)}",
          flush=True)
    try:
        while not stop.wait(1.0) and thread.is_alive():
            pass
    finally:
        agent.stop()  # the data plane itself keeps running
        bus.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = config.load(args.config, host=args.host, port=args.port,
                           database_url=args.database_url, workers=args.workers)
    if not settings.database_url:  # SQLite in the data directory
        from neutrino.server import prepare_data_dir

        prepare_data_dir(settings)
    db = Database(settings.db_url)
    migrate.upgrade(db.engine, in_child=True)  # the server processes never import Alembic
    db.dispose()
    if settings.workers > 1:
        if settings.db_url.startswith("sqlite"):
            print("SQLite serves from one worker; use PostgreSQL or MariaDB for more",
                  file=sys.stderr)
            return 2
        if args.config:
            os.environ["NEUTRINO_CONFIG"] = str(args.config)
        for key, value in (("host", args.host), ("port", args.port),
                           ("database_url", args.database_url)):
            if value is not None:
                os.environ[f"NEUTRINO_{key.upper()}"] = str(value)
        uvicorn.run("neutrino.server:app_from_environment", factory=True,
                    workers=settings.workers, **_uvicorn_kwargs(settings))
        return 0
    from neutrino.server import build

    app, db = build(settings)
    print(f"Neutrino API on http://{settings.host}:{settings.port}", flush=True)
    if settings.bus_url:
        from neutrino.bus.amqp import redact

        print(f"  agents: `neutrino agent` on each host, through {redact(settings.bus_url)}",
              flush=True)
    try:
        _run(app, settings)
    finally:
        app.state.bus.close()  # type: ignore[attr-defined]
        db.dispose()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = config.load(args.config, database_url=args.database_url)
    db = Database(settings.db_url)
    migrate.upgrade(db.engine)
    print(f"database at revision {migrate.current_revision(db.engine)}")
    db.dispose()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neutrino", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything on this box in the foreground")
    up.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="listen port (default 9696)")
    up.add_argument("--data-dir", type=Path, default=None,
                    help="where the database and clouds.yaml live (default ./data)")
    up.add_argument("--no-dataplane", action="store_true", help="serve the API only")
    up.add_argument("--auth", default=None, choices=["noauth", "embedded", "keystone"],
                    help="how requests are authenticated: embedded (default: Neutrino's own "
                         "Keystone v3), noauth (trust identity headers), keystone (an "
                         "external one)")
    up.add_argument("--config", type=Path, default=None, help="TOML settings file")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run the API server from a config file / environment")
    serve.add_argument("--config", type=Path, default=None, help="TOML settings file")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--database-url", default=None,
                       help="SQLAlchemy URL, e.g. postgresql://user:pw@host/db")
    serve.add_argument("--workers", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    agent = sub.add_parser("agent", help="run this host's agent (L2, DHCP) against a server "
                                         "through RabbitMQ (bus_url)")
    agent.add_argument("--config", type=Path, default=None, help="TOML settings file")
    agent.set_defaults(func=cmd_agent)

    from neutrino.cli import instance

    instance.add_parser(sub)

    dbu = sub.add_parser("db-upgrade", help="bring the database schema up to date")
    dbu.add_argument("--config", type=Path, default=None)
    dbu.add_argument("--database-url", default=None)
    dbu.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
