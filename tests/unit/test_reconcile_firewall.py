"""The firewall reconciler's pure parts: desired tables from snapshots, and diff()."""

from __future__ import annotations

import json
from dataclasses import replace

from neutrino import names
from neutrino.agent.firewall import filters as fw
from neutrino.agent.model import Port, SecurityGroup, SgRule, Snapshot
from neutrino.linux import nft

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
SG = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
RG = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
WEB = SgRule("r-web", "ingress", "IPv4", 6, 80, 80, None, RG)
ICMP = SgRule("r-icmp", "ingress", "IPv4", 1, 8, None, "10.0.0.0/8")
OUT = SgRule("r-out", "egress", "IPv4")
ANY6 = SgRule("r-any6", "ingress", "IPv6", 132)


def port(pid: str, ip: str, *, spoof: bool = True, filtering: bool = True,
         local: bool = True) -> Port:
    return Port(pid, "net", f"fa:16:3e:00:00:0{pid[0]}", (("sub", ip),), local=local,
                anti_spoofing=spoof, filtering=filtering,
                security_groups=(SG,) if filtering else ())


def snap(*ports: Port, rules: tuple[SgRule, ...] = (WEB, ICMP, OUT),
         members: tuple[str, ...] = ("10.0.0.7",)) -> Snapshot:
    return Snapshot(1, {}, {p.id: p for p in ports}, {}, {
        SG: SecurityGroup(SG, rules), RG: SecurityGroup(RG, (), members)})


def text(d: fw.Desired) -> str:
    return json.dumps([[t.family, [[c.name, [[r.expr, r.comment] for r in c.rules]]
                                   for c in t.chains]] for t in d.tables])


def seen_of(d: fw.Desired) -> fw.Observed:
    return fw.Observed(d.fingerprint, {s.name: tuple(map(str, s.elements))
                                       for t in d.tables for s in t.sets})


def test_rules_carry_their_id_and_remote_groups_are_sets() -> None:
    d = fw.desired(snap(port(P1, "10.0.0.5")))
    inet = d.tables[1]
    assert inet.family == "inet" and d.tables[0].family == "bridge"
    comments = [r.comment for c in inet.chains for r in c.rules]
    assert {"rule r-web", "rule r-icmp", "rule r-out"} <= set(comments)
    s, stamp = inet.sets
    assert s.name == fw.set_name(RG, "IPv4") and list(s.elements) == ["10.0.0.7"]
    # the fingerprint rides in both tables, as the comment of a set's element
    assert stamp.name == fw.FINGERPRINT_SET and d.tables[0].sets == (stamp,)
    assert stamp.comments == ((1, fw.FINGERPRINT + d.fingerprint),)
    ingress = inet.chain(f"in-{P1}")
    assert ingress is not None and ingress.rules[-1].expr == [{"drop": None}], "fail closed"
    assert f"spoof-{P1}" in text(d)


def test_members_change_only_set_elements() -> None:
    before = fw.desired(snap(port(P1, "10.0.0.5")))
    after = fw.desired(snap(port(P1, "10.0.0.5"), members=("10.0.0.8", "10.0.0.9")))
    assert before.fingerprint == after.fingerprint, "the ruleset does not grow with members"
    plan = fw.diff(after, seen_of(before), before)
    name = fw.set_name(RG, "IPv4")
    assert plan[0] == fw.SetElements(name, ("10.0.0.8", "10.0.0.9"), ("10.0.0.7",))
    # the removed member's flows to the port are cut
    assert plan[1] == fw.FlushConntrack((("-s", "10.0.0.7", "-d", "10.0.0.5"),))
    assert fw.diff(after, seen_of(after), after) == []


def test_rule_removal_patches_tables_and_cuts_only_its_flows() -> None:
    before = fw.desired(snap(port(P1, "10.0.0.5")))
    after = fw.desired(snap(port(P1, "10.0.0.5"), rules=(WEB, OUT)))
    plan = fw.diff(after, seen_of(before), before)
    # the kernel holds what was applied last: only what differs changes
    assert plan[0] == fw.PatchTables(after, before)
    assert plan[1] == fw.FlushConntrack((("-p", "icmp", "-d", "10.0.0.5"),))
    # it holds something else (changed behind our back): replaced whole
    other = fw.desired(snap(port(P1, "10.0.0.5"), rules=(OUT,)))
    assert fw.diff(after, seen_of(other), before)[0] == fw.ReplaceTables(after)


def test_from_empty_and_after_restart() -> None:
    d = fw.desired(snap(port(P1, "10.0.0.5")))
    assert fw.diff(d, fw.Observed()) == [fw.ReplaceTables(d)]  # nothing filtered yet
    old = fw.desired(snap(port(P1, "10.0.0.5"), rules=(OUT,)))
    plan = fw.diff(d, seen_of(old), None)  # a changed table, past unknown: fail closed
    assert plan[1] == fw.FlushConntrack((("-d", "10.0.0.5"), ("-s", "10.0.0.5")))


def test_order_and_unrelated_ports_do_not_matter() -> None:
    a = fw.desired(snap(port(P1, "10.0.0.5"), port(P2, "10.0.0.6")))
    b = fw.desired(snap(port(P2, "10.0.0.6"), port(P1, "10.0.0.5"),
                        rules=(OUT, ICMP, WEB)))
    assert a.fingerprint == b.fingerprint
    remote = port("33333333-3333-4333-8333-333333333333", "10.0.0.9", local=False)
    c = fw.desired(snap(port(P1, "10.0.0.5"), port(P2, "10.0.0.6"), remote))
    assert c.fingerprint == a.fingerprint, "only this host's ports are filtered"


def test_the_two_halves_are_independent() -> None:
    only_spoof = fw.desired(snap(port(P1, "10.0.0.5", filtering=False)))
    assert f"spoof-{P1}" in text(only_spoof) and f"in-{P1}" not in text(only_spoof)
    only_filter = fw.desired(snap(port(P1, "10.0.0.5", spoof=False)))
    assert f"spoof-{P1}" not in text(only_filter) and f"in-{P1}" in text(only_filter)
    neither = fw.desired(snap(replace(port(P1, "10.0.0.5", spoof=False, filtering=False))))
    # no chain of its own: only the decision that lets its tap through the bridge
    assert f"spoof-{P1}" not in text(neither) and f"in-{P1}" not in text(neither)
    assert f"unfiltered port {P1}" in text(neither)
    assert neither.decided == {names.tap(P1)}


def test_a_tap_without_a_decision_is_dropped_by_the_bridge() -> None:
    """Fail closed: the bridge's forward chain ends by dropping what comes from a tap
    with no sending mark and no rule letting it through; every local port's tap (and the
    agent's own ports') has a decision."""
    d = fw.desired(snap(port(P1, "10.0.0.5"), port(P2, "10.0.0.6", filtering=False)))
    bridge = next(t for t in d.tables if t.family == "bridge")
    forward = bridge.chain("forward")
    assert forward is not None and forward.rules[-1] == fw.NO_DECISION
    assert forward.rules[-1].expr[-1] == nft.DROP
    assert d.decided == {names.tap(P1), names.tap(P2)}
    assert fw.desired(snap()).decided == frozenset()


def test_ipv6_rules_and_rules_that_cannot_match() -> None:
    wrong_family = SgRule("r-bad", "ingress", "IPv6", None, None, None, "10.0.0.0/8")
    d = fw.desired(snap(port(P1, "10.0.0.5"), rules=(ANY6, wrong_family)))
    t = text(d)
    assert "rule r-any6" in t and "rule r-bad" not in t
    assert '"ipv6"' in t and "132" in t


def test_effective_halves_and_groups_parsed_from_the_host_state() -> None:
    from neutrino.agent.model import snapshot
    from neutrino.bus.messages import HostState

    def p(pid: str, **attrs: object) -> dict:
        return {"id": pid, "network_id": "n", "mac_address": "FA:16:3E:00:00:01",
                "security_groups": [SG], **attrs}

    state = HostState(1, [], [
        p(P1, port_security_enabled=True),
        p(P2, port_security_enabled=True, anti_spoofing_enabled=False,
          allowed_address_pairs=[{"ip_address": "10.9.0.0/24"}]),
        p("33333333", port_security_enabled=False, security_groups_enabled=True)],
        [], [{"id": SG, "rules": [{"id": "r", "direction": "ingress", "ethertype": "IPv6",
                                   "protocol_number": 58, "normalized_cidr": "fd00::/8"}],
              "members": ["10.0.0.5"]}])
    s = snapshot(state)
    assert (s.ports[P1].anti_spoofing, s.ports[P1].filtering) == (True, True)
    assert (s.ports[P2].anti_spoofing, s.ports[P2].filtering) == (False, True)
    assert (s.ports["33333333"].anti_spoofing, s.ports["33333333"].filtering) == (False, True)
    assert s.ports[P2].allowed_address_pairs == (("10.9.0.0/24", "fa:16:3e:00:00:01"),)
    assert s.security_groups[SG].rules[0] == SgRule("r", "ingress", "IPv6", 58, None, None,
                                                    "fd00::/8")
    # a scoped sync still replaces the groups whole
    merged = Snapshot().merged(s, ["n"])
    assert merged.security_groups == s.security_groups


def test_conntrack_filters_match_listed_flows() -> None:
    listing = (
        "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.7 dst=10.0.0.5 sport=40000 "
        "dport=80 src=10.0.0.5 dst=10.0.0.7 sport=80 dport=40000 [ASSURED] mark=0 use=1\n"
        "ipv6     10 udp      17 29 src=2001:db8:0::7 dst=2001:db8::5 sport=1 dport=2 "
        "src=2001:db8::5 dst=2001:db8::7 sport=2 dport=1 mark=0 use=1\n")
    tcp, udp = fw.flows(listing)
    assert tcp == (4, "tcp", "10.0.0.7", "10.0.0.5")
    assert udp == (6, "udp", "2001:db8::7", "2001:db8::5")
    assert fw.matches(("-s", "10.0.0.7", "-d", "10.0.0.5"), tcp)
    assert fw.matches(("-p", "tcp", "-d", "10.0.0.5"), tcp)
    assert not fw.matches(("-p", "icmp", "-d", "10.0.0.5"), tcp)
    assert not fw.matches(("-s", "10.0.0.5"), tcp), "the original direction only"
    assert not fw.matches(("-d", "2001:db8::5"), udp), "without -f: IPv4 only, as conntrack"
    assert fw.matches(("-f", "ipv6", "-d", "2001:db8::5"), udp)
