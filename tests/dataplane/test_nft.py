"""nftables through JSON against the real kernel: rules really filter, tables are
replaced atomically, set elements change one by one."""

from __future__ import annotations

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
