"""Security-group rules at scale: 10,000 rules that name remote groups.

    .venv/bin/python bench/sg_rules_bench.py [--rules 10000] [--groups 20] [--members 5]
                                             [--upstream 1000]

What it does, on loopback only:

1. starts ``neutrino up --auth noauth --no-dataplane`` (SQLite in a temporary data
   directory) on a free port and gives the project unlimited quotas;
2. makes ``--groups`` security groups, each with ``--members`` ports in it (the
   members a remote-group rule stands for);
3. creates ``--rules`` rules over the API, one request each on one keep-alive
   connection, rule *i* in group ``i % G`` naming group ``(i // G) % G`` as its
   remote group (TCP, a port that makes each rule distinct), and prints the time
   of every 1,000 rules: linear time shows as a flat column;
4. counts the rows in the database: one row per rule, whatever the size of the remote
   groups (adding members afterwards adds no rule rows);
5. with ``--upstream N``, runs the first N rules of the same workload on the upstream
   peer (127.0.0.1:19696, used as found; what the run made is removed afterwards) and
   prints the ratio per 1,000 rules.

Exit status 1 when a request fails or the row counts are not one per rule.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from api_bench import PEER_URL, Client, healthy, machine, neutrino_server

from neutrino.db import tables as t

CHUNK = 1000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def setup(client: Client, groups: int, members: int, tag: str) -> tuple[list[str], str]:
    """``groups`` groups with ``members`` ports each; (group ids, network id)."""
    net = client.json("POST", "/v2.0/networks", {"network": {"name": f"{tag}-net"}},
                      expect=201)["network"]["id"]
    client.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net, "cidr": "10.200.0.0/16", "ip_version": 4}}, expect=201)
    ids = []
    for g in range(groups):
        group = client.json("POST", "/v2.0/security-groups", {"security_group": {
            "name": f"{tag}-{g}"}}, expect=201)["security_group"]["id"]
        ids.append(group)
        for _ in range(members):
            client.json("POST", "/v2.0/ports", {"port": {
                "network_id": net, "security_groups": [group]}}, expect=201)
    return ids, net


def rule_body(i: int, groups: list[str]) -> dict:
    g = len(groups)
    return {"security_group_rule": {
        "security_group_id": groups[i % g], "remote_group_id": groups[(i // g) % g],
        "direction": "ingress", "protocol": "tcp",
        "port_range_min": 1 + i // (g * g), "port_range_max": 1 + i // (g * g)}}


def create_rules(client: Client, groups: list[str], count: int, label: str) -> list[float]:
    """Seconds per 1,000 rules (the last chunk scaled if shorter)."""
    per_chunk = []
    start = time.perf_counter()
    for i in range(count):
        status, body = client.request("POST", "/v2.0/security-group-rules",
                                      rule_body(i, groups))
        if status != 201:
            raise RuntimeError(f"{label}: rule {i}: {status} {body[:300]!r}")
        if (i + 1) % CHUNK == 0 or i + 1 == count:
            now = time.perf_counter()
            done = (i % CHUNK) + 1
            per_chunk.append((now - start) * CHUNK / done)
            log(f"{label}: {i + 1} rules, last {done} in {now - start:.2f} s")
            start = now
    return per_chunk


def count_rows(db_url: str) -> dict[str, int]:
    engine = sa.create_engine(db_url)
    rules = t.security_group_rules
    with engine.connect() as conn:
        def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
            return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))

        out = {
            "security_group_rules": count(rules),
            "rules naming a remote group": count(rules, rules.c.remote_group_id.is_not(None)),
            "security_groups": count(t.security_groups),
            "ports": count(t.ports),
            "port_security_groups": count(t.port_security_groups),
        }
    engine.dispose()
    return out


def remove_upstream(client: Client, groups: list[str], net: str) -> None:
    ports = client.json("GET", f"/v2.0/ports?network_id={net}&fields=id")["ports"]
    for p in ports:
        client.request("DELETE", f"/v2.0/ports/{p['id']}")
    for g in groups:
        client.request("DELETE", f"/v2.0/security-groups/{g}")
    client.request("DELETE", f"/v2.0/networks/{net}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", type=int, default=10_000, help="rules to create (10000)")
    p.add_argument("--groups", type=int, default=20, help="security groups (20)")
    p.add_argument("--members", type=int, default=5, help="ports in each group (5)")
    p.add_argument("--upstream", type=int, default=0, metavar="N",
                   help="also create the first N rules on the upstream peer (0: skip)")
    args = p.parse_args(argv)
    if args.rules > args.groups ** 2 * 65535:
        p.error("too many rules for that many groups (each must be distinct)")

    data_dir = Path(tempfile.mkdtemp(prefix="neutrino-sg-bench-"))
    ok = True
    try:
        with neutrino_server(["up", "--data-dir", str(data_dir), "--no-dataplane",
                              "--auth", "noauth"], log) as (url, pid):
            log(f"neutrino up (SQLite in {data_dir}, pid {pid}) at {url}")
            client = Client(url)
            client.json("PUT", "/v2.0/quotas/fake_project_id", {"quota": {
                "network": -1, "subnet": -1, "port": -1, "security_group": -1,
                "security_group_rule": -1}})
            groups, net = setup(client, args.groups, args.members, "bench")
            db_url = f"sqlite:///{data_dir / 'neutrino.sqlite'}"
            before = count_rows(db_url)
            ours = create_rules(client, groups, args.rules, "neutrino")
            after = count_rows(db_url)
            # more members: still no more rule rows
            for g in groups[:2]:
                for _ in range(args.members):
                    client.json("POST", "/v2.0/ports", {"port": {
                        "network_id": net, "security_groups": [g]}}, expect=201)
            grown = count_rows(db_url)
            client.close()

        theirs: list[float] = []
        if args.upstream:
            if not healthy(PEER_URL):
                log(f"upstream peer not reachable at {PEER_URL}: skipped")
            else:
                peer = Client(PEER_URL)
                peer_groups, peer_net = setup(peer, args.groups, args.members, "sg-bench")
                try:
                    theirs = create_rules(peer, peer_groups, args.upstream, "upstream")
                finally:
                    remove_upstream(peer, peer_groups, peer_net)
                    peer.close()

        print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  {machine()}")
        print(f"workload: {args.rules} rules over {args.groups} groups of {args.members} "
              f"member ports each, every rule naming a remote group; one request per rule, "
              f"sequential, `neutrino up` on SQLite")
        print("\n| rules | neutrino s / 1,000 | rules/s |"
              + (" upstream s / 1,000 | upstream / neutrino |" if theirs else ""))
        print("|---|---|---|" + ("---|---|" if theirs else ""))
        for n, secs in enumerate(ours):
            line = f"| {min((n + 1) * CHUNK, args.rules)} | {secs:.2f} | {CHUNK / secs:.0f} |"
            if theirs:
                line += (f" {theirs[n]:.2f} | {theirs[n] / secs:.1f}x |" if n < len(theirs)
                         else " | |")
            print(line)
        first, last = ours[0], ours[-1]
        print(f"\nlast 1,000 / first 1,000: {last / first:.2f} (1.0 is linear: each rule "
              f"costs the same however many exist)")
        print("\n| rows | before the rules | after | after 10 more members |")
        print("|---|---|---|---|")
        for key in after:
            print(f"| {key} | {before[key]} | {after[key]} | {grown[key]} |")
        added = after["security_group_rules"] - before["security_group_rules"]
        print(f"\nrule rows added: {added} for {args.rules} rules "
              f"({'one per rule' if added == args.rules else 'NOT one per rule'}); "
              f"member ports added afterwards: "
              f"{grown['ports'] - after['ports']}, rule rows added by them: "
              f"{grown['security_group_rules'] - after['security_group_rules']}")
        ok = added == args.rules == after["rules naming a remote group"] - before[
            "rules naming a remote group"] and grown["security_group_rules"] == after[
            "security_group_rules"]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
