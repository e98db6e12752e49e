"""nftables through its JSON interface (``nft -j``), one atomic transaction per table.

``apply_table`` replaces a whole table in one ``nft -j -f -`` batch: *add* the table
(so the delete cannot fail), *delete* it, then add it again with its sets, chains and
rules.  The kernel commits the batch as one transaction: packets see the old table
or the new one, never a half-built one, and a batch with an error changes nothing.

Set elements (e.g. the addresses of a remote security group) can also change
incrementally, without touching the rules that use the set; and ``patch_tables`` turns
tables the kernel is known to hold into new ones in one transaction that touches only
the chains and sets that differ (nft's cost grows with the rules it is given).

Rules carry a ``comment`` naming the API object they came from, so kernel state
maps back to it (``neutrino trace``, the sweeper).  Expressions are the nftables
JSON schema (libnftables-json(5)); the small builders below cover what the agents
use, anything else can be written as the dict itself.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neutrino.linux.errors import CommandError
from neutrino.linux.run import run

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
MAX_COMMENT = 128  # nft refuses longer comments
Expr = dict[str, Any]
Element = str | int


# --- the objects of a table ---------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    expr: Sequence[Expr]
    comment: str | None = None
    handle: int | None = field(default=None, compare=False)  # set when listed

    def __post_init__(self) -> None:
        if self.comment is not None:
            assert len(self.comment.encode()) <= MAX_COMMENT, \
                f"rule comment longer than {MAX_COMMENT} bytes: {self.comment!r}"


@dataclass(frozen=True)
class Chain:
    """A chain; with ``hook`` it is a base chain (``type``/``priority``/``policy``)."""

    name: str
    rules: Sequence[Rule] = ()
    type: str | None = None  # "filter", "nat", "route"
    hook: str | None = None  # "prerouting", "input", "forward", "output", "postrouting"…
    priority: int = 0
    policy: str | None = None  # "accept" / "drop"

    def __post_init__(self) -> None:
        assert (self.hook is None) == (self.type is None), \
            f"chain {self.name!r}: a base chain needs both type and hook"


@dataclass(frozen=True)
class Set:
    name: str
    type: str  # "ipv4_addr", "ipv6_addr", "inet_service", "ether_addr"…
    elements: Sequence[Element] = ()
    flags: Sequence[str] = ()  # ("interval",) for prefixes and ranges
    #: (element, comment): nft keeps a comment with an element (not with a set, in 1.0.6)
    comments: Sequence[tuple[Element, str]] = ()


@dataclass(frozen=True)
class Table:
    family: str
    name: str
    sets: Sequence[Set] = ()
    chains: Sequence[Chain] = ()

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)

    def set(self, name: str) -> Set | None:
        return next((s for s in self.sets if s.name == name), None)


# --- expression builders -----------------------------------------------------------------

ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}
RETURN: Expr = {"return": None}


def counter() -> Expr:
    return {"counter": None}


def jump(chain: str) -> Expr:
    return {"jump": {"target": chain}}


def goto(chain: str) -> Expr:
    return {"goto": {"target": chain}}


def payload(protocol: str, field_: str) -> Expr:
    """A header field, e.g. ``payload("ip", "saddr")``, ``payload("tcp", "dport")``."""
    return {"payload": {"protocol": protocol, "field": field_}}


def meta(key: str) -> Expr:
    """Packet metadata, e.g. ``meta("l4proto")``, ``meta("iifname")``."""
    return {"meta": {"key": key}}


def ct(key: str) -> Expr:
    return {"ct": {"key": key}}


def set_ref(name: str) -> str:
    return f"@{name}"


def value(v: Element | Sequence[Element]) -> Any:
    """A right-hand side: addresses and CIDRs become nft prefixes, ``a-b`` a range,
    lists an anonymous set."""
    if isinstance(v, list | tuple):
        return {"set": [value(x) for x in v]}
    return _elem(v)


def match(left: Expr, right: Any, op: str = "==") -> Expr:
    """``left op right``; a plain Python value on the right goes through ``value``."""
    if not (isinstance(right, str) and right.startswith("@")) and not isinstance(right, dict):
        right = value(right)
    return {"match": {"op": op, "left": left, "right": right}}


def _elem(v: Element) -> Any:
    if isinstance(v, int):
        return v
    if "/" in v:
        net = ipaddress.ip_network(v, strict=False)
        if net.prefixlen == net.max_prefixlen:
            return str(net.network_address)
        return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    low, dash, high = v.partition("-")
    if dash and _scalar(low) is not None and _scalar(high) is not None:
        return {"range": [_scalar(low), _scalar(high)]}
    scalar = _scalar(v)
    return v if scalar is None else scalar  # else: interface names, ether addresses…


def _scalar(v: str) -> str | int | None:
    """An address (normalised) or a number; None for anything else."""
    v = v.strip()
    if v.isdigit():
        return int(v)
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


def _unelem(v: Any) -> Element:
    """An element as nft lists it, back to our spelling (inverse of ``_elem``)."""
    if isinstance(v, dict):
        if "elem" in v:
            return _unelem(v["elem"]["val"])
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "range" in v:
            low, high = v["range"]
            return f"{_unelem(low)}-{_unelem(high)}"
    return v


def _norm(v: Element) -> Element:
    return _unelem(_elem(v))


# --- running nft ------------------------------------------------------------------------------

def _nft(commands: list[Expr], netns: str | None) -> None:
    batch = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]})
    run(["nft", "-j", "-f", "-"], input=batch, netns=netns)


def _list(what: Sequence[str], netns: str | None) -> list[Expr] | None:
    """``nft -j list <what>``; None when the object does not exist."""
    try:
        out = run(["nft", "-j", "list", *what], netns=netns).stdout
    except CommandError as exc:
        if "No such file or directory" in exc.stderr:
            return None
        raise
    return json.loads(out)["nftables"]


def _check_family(family: str) -> None:
    assert family in FAMILIES, f"unknown nftables family {family!r}"


# --- tables -------------------------------------------------------------------------------

def _set_spec(ref: Expr, s: Set) -> Expr:
    spec: Expr = {**ref, "name": s.name, "type": s.type}
    if s.flags:
        spec["flags"] = list(s.flags)
    if s.elements:
        spec["elem"] = _elements(s.elements, dict(s.comments))
    return spec


def _elements(elements: Iterable[Element], comments: Mapping[Element, str]) -> list[Any]:
    return [{"elem": {"val": _elem(e), "comment": comments[e]}} if e in comments
            else _elem(e) for e in elements]


def _chain_spec(ref: Expr, c: Chain) -> Expr:
    spec: Expr = {**ref, "name": c.name}
    if c.hook is not None:
        spec.update(type=c.type, hook=c.hook, prio=c.priority)
        if c.policy is not None:
            spec["policy"] = c.policy
    return spec


def _rule_commands(ref: Expr, c: Chain) -> list[Expr]:
    cmds = []
    for r in c.rules:
        rule: Expr = {**ref, "chain": c.name, "expr": list(r.expr)}
        if r.comment is not None:
            rule["comment"] = r.comment
        cmds.append({"add": {"rule": rule}})
    return cmds


def _table_commands(family: str, name: str, content: Iterable[Set | Chain]) -> list[Expr]:
    ref = {"family": family, "table": name}
    sets = [c for c in content if isinstance(c, Set)]
    chains = [c for c in content if isinstance(c, Chain)]
    cmds: list[Expr] = [{"add": {"table": {"family": family, "name": name}}},
                        {"delete": {"table": {"family": family, "name": name}}},
                        {"add": {"table": {"family": family, "name": name}}}]
    # Sets before the rules that use them; every chain before any rule, so a rule
    # may jump to a chain declared after its own.
    cmds += [{"add": {"set": _set_spec(ref, s)}} for s in sets]
    cmds += [{"add": {"chain": _chain_spec(ref, c)}} for c in chains]
    for c in chains:
        cmds += _rule_commands(ref, c)
    return cmds


def apply_table(family: str, name: str, content: Iterable[Set | Chain], *,
                netns: str | None = None) -> None:
    """Make table ``family name`` exactly ``content`` (sets and chains with their
    rules) in one atomic transaction.  If nft rejects anything, nothing changes and
    CommandError says why."""
    _check_family(family)
    _nft(_table_commands(family, name, list(content)), netns)


def apply_tables(tables: Iterable[Table], *, netns: str | None = None) -> None:
    """``apply_table`` for several tables in one transaction (e.g. a bridge table and
    an inet table that only make sense together)."""
    cmds: list[Expr] = []
    for t in tables:
        _check_family(t.family)
        cmds += _table_commands(t.family, t.name, [*t.sets, *t.chains])
    _nft(cmds, netns)


def _patch_commands(old: Table, new: Table, held: Sequence[Set] | None) -> list[Expr] | None:
    ref = {"family": new.family, "table": new.name}
    before_sets = {s.name: s for s in old.sets}
    after_sets = {s.name: s for s in new.sets}
    kernel_sets = {s.name: s for s in held} if held is not None else before_sets
    before = {c.name: c for c in old.chains}
    after = {c.name: c for c in new.chains}
    add_sets, add_chains, flush, rules, delete, elements = [], [], [], [], [], []
    for name, s in after_sets.items():
        was = before_sets.get(name)
        if was is None:
            add_sets.append({"add": {"set": _set_spec(ref, s)}})
            continue
        if (was.type, tuple(was.flags)) != (s.type, tuple(s.flags)):
            return None  # a set cannot change its type in place
        have = kernel_sets.get(name, was)
        have_notes, want_notes = dict(have.comments), dict(s.comments)
        have_elems = {_norm(e): have_notes.get(e) for e in have.elements}
        want_elems = {_norm(e): want_notes.get(e) for e in s.elements}
        gone = [e for e, c in have_elems.items() if e not in want_elems or want_elems[e] != c]
        new_ = [e for e, c in want_elems.items() if e not in have_elems or have_elems[e] != c]
        spec = {**ref, "name": name}
        if gone:  # deleted before added: an element whose comment changed is both
            elements.append({"delete": {"element": {**spec, "elem": _elements(gone, {})}}})
        if new_:
            elements.append({"add": {"element": {**spec, "elem": _elements(
                new_, {e: c for e, c in want_elems.items() if c is not None})}}})
    for name, c in after.items():
        was = before.get(name)
        if was is None:
            add_chains.append({"add": {"chain": _chain_spec(ref, c)}})
        elif (was.type, was.hook, was.priority, was.policy) != (c.type, c.hook, c.priority,
                                                                  c.policy):
            return None  # a base chain's hook cannot change in place
        elif was is c or tuple(was.rules) == tuple(c.rules):
            continue
        else:
            flush.append({"flush": {"chain": {**ref, "name": name}}})
        rules += _rule_commands(ref, c)
    for name in before.keys() - after.keys():
        flush.append({"flush": {"chain": {**ref, "name": name}}})
        delete.append({"delete": {"chain": {**ref, "name": name}}})
    delete += [{"delete": {"set": {**ref, "name": name}}}
               for name in before_sets.keys() - after_sets.keys()]
    # sets and chains before the rules that use them; a chain or set goes once the rules
    # naming it went (flushed); elements last
    return [*add_sets, *add_chains, *flush, *rules, *delete, *elements]


def patch_tables(old: Sequence[Table], new: Sequence[Table], *,
                 held: Mapping[tuple[str, str], Sequence[Set]] | None = None,
                 netns: str | None = None) -> bool:
    """Turn tables ``old`` (what the kernel holds, as last applied) into ``new`` in one
    atomic transaction that touches only what differs: chains added, flushed and filled
    again, or deleted; sets added or deleted; set elements added or deleted (against
    ``held``, the sets as listed from the kernel, when given).  Much cheaper than
    ``apply_tables`` when one port of a hundred changed.  False, with nothing done,
    when the change cannot be a patch (a table added or gone, a base chain's hook or a
    set's type changed): apply the tables whole then."""
    olds = {(t.family, t.name): t for t in old}
    if set(olds) != {(t.family, t.name) for t in new}:
        return False
    cmds: list[Expr] = []
    for t in new:
        _check_family(t.family)
        part = _patch_commands(olds[(t.family, t.name)], t,
                               None if held is None else held.get((t.family, t.name), ()))
        if part is None:
            return False
        cmds += part
    if cmds:
        _nft(cmds, netns)
    return True


def list_tables(netns: str | None = None) -> list[tuple[str, str]]:
    found = _list(["tables"], netns) or []
    return [(o["table"]["family"], o["table"]["name"]) for o in found if "table" in o]


def list_table(family: str, name: str, *, netns: str | None = None) -> Table | None:
    """What the kernel holds for one table (rule expressions as nft lists them)."""
    _check_family(family)
    found = _list(["table", family, name], netns)
    if found is None:
        return None
    sets: list[Set] = []
    chains: dict[str, Chain] = {}
    rules: dict[str, list[Rule]] = {}
    for obj in found:
        if "set" in obj:
            sets.append(_set(obj["set"]))
        elif "chain" in obj:
            c = obj["chain"]
            chains[c["name"]] = Chain(c["name"], (), c.get("type"), c.get("hook"),
                                      c.get("prio", 0), c.get("policy"))
        elif "rule" in obj:
            r = obj["rule"]
            rules.setdefault(r["chain"], []).append(
                Rule(tuple(r["expr"]), r.get("comment"), r.get("handle")))
    return Table(family, name, tuple(sets), tuple(
        Chain(c.name, tuple(rules.get(c.name, ())), c.type, c.hook, c.priority, c.policy)
        for c in chains.values()))


def _set(s: Expr) -> Set:
    elements = s.get("elem", ())
    return Set(s["name"], s["type"] if isinstance(s["type"], str) else " . ".join(s["type"]),
               tuple(_unelem(e) for e in elements), tuple(s.get("flags", ())),
               tuple((_unelem(e), e["elem"]["comment"]) for e in elements
                     if isinstance(e, dict) and "comment" in e.get("elem", {})))


def list_sets(*, netns: str | None = None) -> dict[tuple[str, str], list[Set]]:
    """Every set of every table, by (family, table name), with its elements and their
    comments: one ``nft`` run that lists no rule (cheap whatever the ruleset's size)."""
    found: dict[tuple[str, str], list[Set]] = {}
    for obj in _list(["sets"], netns) or []:
        if "set" in obj:
            found.setdefault((obj["set"]["family"], obj["set"]["table"]), []).append(
                _set(obj["set"]))
    return found


def delete_table(family: str, name: str, *, netns: str | None = None) -> bool:
    """Remove the table; False if it was not there."""
    _check_family(family)
    if (family, name) not in list_tables(netns):
        return False
    # add-then-delete in one batch: cannot fail if it vanished since we looked.
    _nft([{"add": {"table": {"family": family, "name": name}}},
          {"delete": {"table": {"family": family, "name": name}}}], netns)
    return True


# --- set elements ----------------------------------------------------------------------------

def list_elements(family: str, table: str, set_: str, *,
                  netns: str | None = None) -> list[Element]:
    _check_family(family)
    found = _list(["set", family, table, set_], netns)
    if found is None:
        raise CommandError(["nft", "list", "set", family, table, set_], 1,
                           f"no set {set_!r} in table {family} {table}", netns=netns)
    spec = next(o["set"] for o in found if "set" in o)
    return [_unelem(e) for e in spec.get("elem", ())]


def _element_command(verb: str, family: str, table: str, set_: str,
                     elements: Iterable[Element]) -> Expr:
    return {verb: {"element": {"family": family, "table": table, "name": set_,
                               "elem": [_elem(e) for e in elements]}}}


def add_elements(family: str, table: str, set_: str, elements: Iterable[Element], *,
                 netns: str | None = None) -> bool:
    """Add the elements not yet in the set; True if any were added."""
    have = set(list_elements(family, table, set_, netns=netns))
    missing = sorted({_norm(e) for e in elements} - have, key=str)
    if missing:
        _nft([_element_command("add", family, table, set_, missing)], netns)
    return bool(missing)


def delete_elements(family: str, table: str, set_: str, elements: Iterable[Element], *,
                    netns: str | None = None) -> bool:
    """Remove those of the elements that are in the set; True if any were removed."""
    have = set(list_elements(family, table, set_, netns=netns))
    present = sorted({_norm(e) for e in elements} & have, key=str)
    if present:
        _nft([_element_command("delete", family, table, set_, present)], netns)
    return bool(present)


def change_elements(family: str, table: str, set_: str, add: Iterable[Element],
                    delete: Iterable[Element], *, netns: str | None = None) -> bool:
    """Delete then add elements in one transaction: an interval set refuses an element
    overlapping one still in it, so a prefix replacing an address it covers (or the
    reverse) must go in after that address left; packets see the set before or after.
    True if anything changed."""
    have = set(list_elements(family, table, set_, netns=netns))
    gone = sorted({_norm(e) for e in delete} & have, key=str)
    new = sorted({_norm(e) for e in add} - (have - set(gone)), key=str)
    cmds = [_element_command(verb, family, table, set_, elems)
            for verb, elems in (("delete", gone), ("add", new)) if elems]
    if cmds:
        _nft(cmds, netns)
    return bool(cmds)


def replace_elements(family: str, table: str, set_: str, elements: Iterable[Element], *,
                     netns: str | None = None) -> bool:
    """Make the set exactly ``elements`` in one transaction (flush + add)."""
    want = {_norm(e) for e in elements}
    if set(list_elements(family, table, set_, netns=netns)) == want:
        return False
    cmds: list[Expr] = [{"flush": {"set": {"family": family, "table": table, "name": set_}}}]
    if want:
        cmds.append(_element_command("add", family, table, set_, sorted(want, key=str)))
    _nft(cmds, netns)
    return True
