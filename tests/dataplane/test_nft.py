"""nftables through JSON against the real kernel: rules really filter, tables are
replaced atomically, set elements change one by one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from neutrino.linux import nft
from neutrino.linux.errors import CommandError

from .conftest import Lan, need, new_id, ping

TABLE = "neutrino-test"


def _input_chain(*rules: nft.Rule) -> nft.Chain:
    return nft.Chain("input", rules, type="filter", hook="input", priority=0, policy="accept")


def _icmp_from(address: str, verdict: nft.Expr, rule_id: str) -> nft.Rule:
    return nft.Rule([nft.match(nft.payload("ip", "saddr"), address),
                     nft.match(nft.meta("l4proto"), "icmp"), nft.counter(), verdict],
                    comment=f"security_group_rule:{rule_id}")


def _comments(table: nft.Table | None, chain: str = "input") -> list[str | None]:
    assert table is not None
    found = table.chain(chain)
    assert found is not None
    return [r.comment for r in found.rules]


def test_drop_rule_filters_and_replacement_allows(lan: Lan) -> None:
    need("nft")
    deny, allow = new_id(), new_id()
    assert ping(lan.a, lan.ip_b)

    nft.apply_table("inet", TABLE, [_input_chain(_icmp_from(lan.ip_a, nft.DROP, deny))],
                    netns=lan.b)
    assert not ping(lan.a, lan.ip_b, expect=False)
    table = nft.list_table("inet", TABLE, netns=lan.b)
    assert _comments(table) == [f"security_group_rule:{deny}"]
    chain = table.chain("input")
    assert (chain.type, chain.hook, chain.priority, chain.policy) == \
        ("filter", "input", 0, "accept")
    counted = next(e["counter"] for e in chain.rules[0].expr if "counter" in e)
    assert counted["packets"] >= 1, "the drop rule is what stopped the ping"

    # Replace the whole table: the drop rule is gone, not merely joined by another.
    nft.apply_table("inet", TABLE, [_input_chain(_icmp_from(lan.ip_a, nft.ACCEPT, allow))],
                    netns=lan.b)
    assert ping(lan.a, lan.ip_b)
    assert _comments(nft.list_table("inet", TABLE, netns=lan.b)) == \
        [f"security_group_rule:{allow}"]
    # The host's own ruleset never saw any of it.
    assert ("inet", TABLE) not in nft.list_tables()


def test_apply_same_content_twice_lists_the_same(lan: Lan) -> None:
    need("nft")
    content = [nft.Set("remote", "ipv4_addr", ["10.9.0.1", "10.9.0.2"]),
               nft.Chain("sg-ingress", [nft.Rule([nft.match(nft.payload("ip", "saddr"),
                                                            nft.set_ref("remote")),
                                                  nft.ACCEPT], comment="rule:1")]),
               _input_chain(nft.Rule([nft.match(nft.ct("state"), ["established", "related"]),
                                      nft.ACCEPT], comment="conntrack"),
                            nft.Rule([nft.jump("sg-ingress")], comment="port:1"))]
    nft.apply_table("inet", TABLE, content, netns=lan.b)
    first = nft.list_table("inet", TABLE, netns=lan.b)
    nft.apply_table("inet", TABLE, content, netns=lan.b)
    assert nft.list_table("inet", TABLE, netns=lan.b) == first
    assert first is not None and first.set("remote") == nft.Set(
        "remote", "ipv4_addr", ("10.9.0.1", "10.9.0.2"))
    assert [c.name for c in first.chains] == ["sg-ingress", "input"]


def test_failed_batch_changes_nothing(lan: Lan) -> None:
    need("nft")
    nft.apply_table("inet", TABLE, [_input_chain(_icmp_from(lan.ip_a, nft.DROP, "r1"))],
                    netns=lan.b)
    before = nft.list_table("inet", TABLE, netns=lan.b)
    handles = [r.handle for r in before.chains[0].rules]
    broken = [_input_chain(_icmp_from(lan.ip_a, nft.ACCEPT, "r2"),
                           nft.Rule([nft.jump("no-such-chain")], comment="broken"))]
    with pytest.raises(CommandError) as info:
        nft.apply_table("inet", TABLE, broken, netns=lan.b)
    assert info.value.returncode != 0 and info.value.stderr
    after = nft.list_table("inet", TABLE, netns=lan.b)
    assert after == before and [r.handle for r in after.chains[0].rules] == handles, \
        "the old table is untouched: same rules, same handles"
    assert not ping(lan.a, lan.ip_b, expect=False), "and still enforced"


def test_set_elements_incremental(lan: Lan) -> None:
    need("nft")
    remote = nft.Set("blocked", "ipv4_addr", flags=("interval",))
    drop = nft.Rule([nft.match(nft.payload("ip", "saddr"), nft.set_ref("blocked")), nft.DROP],
                    comment="remote_group:blocked")
    nft.apply_table("inet", TABLE, [remote, _input_chain(drop)], netns=lan.b)
    assert nft.list_elements("inet", TABLE, "blocked", netns=lan.b) == []
    assert ping(lan.a, lan.ip_b)

    assert nft.add_elements("inet", TABLE, "blocked", [lan.ip_a, "10.66.0.0/16"],
                            netns=lan.b) is True
    assert nft.add_elements("inet", TABLE, "blocked", [lan.ip_a], netns=lan.b) is False
    assert sorted(nft.list_elements("inet", TABLE, "blocked", netns=lan.b)) == \
        sorted([lan.ip_a, "10.66.0.0/16"])
    assert not ping(lan.a, lan.ip_b, expect=False)

    assert nft.delete_elements("inet", TABLE, "blocked", [lan.ip_a], netns=lan.b) is True
    assert nft.delete_elements("inet", TABLE, "blocked", [lan.ip_a], netns=lan.b) is False
    assert ping(lan.a, lan.ip_b)
    assert nft.list_elements("inet", TABLE, "blocked", netns=lan.b) == ["10.66.0.0/16"]

    assert nft.replace_elements("inet", TABLE, "blocked", [lan.ip_a], netns=lan.b) is True
    assert nft.replace_elements("inet", TABLE, "blocked", [lan.ip_a], netns=lan.b) is False
    assert nft.list_elements("inet", TABLE, "blocked", netns=lan.b) == [lan.ip_a]
    assert not ping(lan.a, lan.ip_b, expect=False)
    # The rules were never touched by element changes.
    table = nft.list_table("inet", TABLE, netns=lan.b)
    assert _comments(table) == ["remote_group:blocked"]


def test_delete_table_ignores_absent(lan: Lan) -> None:
    need("nft")
    nft.apply_table("inet", TABLE, [_input_chain()], netns=lan.b)
    assert ("inet", TABLE) in nft.list_tables(netns=lan.b)
    assert nft.delete_table("inet", TABLE, netns=lan.b) is True
    assert nft.delete_table("inet", TABLE, netns=lan.b) is False
    assert nft.list_table("inet", TABLE, netns=lan.b) is None


def _state(netns: str) -> dict:
    """Both test tables as the kernel holds them: chains by name (their rules in order),
    sets with their elements and element comments."""
    out: dict = {}
    for family in ("bridge", "inet"):
        table = nft.list_table(family, TABLE, netns=netns)
        assert table is not None
        out[family] = {c.name: (c.type, c.hook, c.priority, c.policy,
                                [(list(r.expr), r.comment) for r in c.rules])
                       for c in table.chains}
    for (family, name), sets in nft.list_sets(netns=netns).items():
        if name == TABLE:
            out[f"{family} sets"] = {s.name: (s.type, sorted(map(str, s.elements)),
                                              sorted((str(e), c) for e, c in s.comments))
                                     for s in sets}
    return out


def test_patch_leaves_what_a_replacement_leaves(make_ns: Callable[[], str]) -> None:
    need("nft")
    patched, replaced = make_ns(), make_ns()

    def jump(chain: str) -> nft.Rule:
        return nft.Rule([nft.match(nft.meta("iifname"), f"tap-{chain}"), nft.jump(chain)],
                        f"to {chain}")

    def drop(port: int) -> nft.Rule:
        return nft.Rule([nft.match(nft.meta("l4proto"), "tcp"),
                         nft.match(nft.payload("th", "dport"), port), nft.DROP], f"p{port}")

    def stamp(text: str) -> nft.Set:
        return nft.Set("stamp", "inet_service", (1,), comments=((1, text),))

    def tables(chains: dict[str, list[nft.Rule]], members: list[str], fp: str,
               extra_set: str) -> tuple[nft.Table, nft.Table]:
        base = nft.Chain("forward", [jump(n) for n in chains], "filter", "forward", 0, "accept")
        sets = (nft.Set("members", "ipv4_addr", members, ("interval",)),
                nft.Set(extra_set, "ipv4_addr"), stamp(fp))
        use = nft.Rule([nft.match(nft.payload("ip", "saddr"), nft.set_ref("members")),
                        nft.ACCEPT], "members")
        inet = nft.Table("inet", TABLE, sets, (
            base, *(nft.Chain(n, [use, *rules]) for n, rules in chains.items())))
        bridge = nft.Table("bridge", TABLE, (stamp(fp),), (
            nft.Chain("prerouting", [jump("b1")], "filter", "prerouting", -300, "accept"),
            nft.Chain("b1", [nft.Rule([nft.DROP], fp)])))
        return bridge, inet

    old = tables({"c1": [drop(1)], "c2": [drop(2)], "c3": [drop(3)]},
                 ["10.0.0.1", "10.0.0.2", "10.9.0.0/16"], "old", "gone")
    new = tables({"c1": [drop(1)], "c3": [drop(3), drop(33)], "c4": [drop(4)]},
                 ["10.0.0.2", "10.0.0.3", "10.9.0.0/16"], "new", "made")
    nft.apply_tables(old, netns=patched)
    assert nft.patch_tables(old, new, held=nft.list_sets(netns=patched), netns=patched)
    nft.apply_tables(new, netns=replaced)
    assert _state(patched) == _state(replaced)
    # patching what the kernel already holds does nothing (no nft run at all)
    assert nft.patch_tables(new, new, held=nft.list_sets(netns=patched), netns=patched)
    assert _state(patched) == _state(replaced)
    # a base chain's hook cannot change in place: not a patch, nothing done
    bridge, inet = new
    moved = nft.Table("inet", TABLE, inet.sets, (
        nft.Chain("forward", inet.chains[0].rules, "filter", "forward", 10, "accept"),
        *inet.chains[1:]))
    assert not nft.patch_tables(new, (bridge, moved), netns=patched)
    assert _state(patched) == _state(replaced)
