"""The agent's reconcilers run in the order they declare (``after``), whatever order
they are given in; a cycle is refused."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from neutrino.agent.dhcp.servers import Dhcp
from neutrino.agent.firewall.filters import Firewall
from neutrino.agent.l2.bridges import L2, L2Config
from neutrino.agent.l3.external import External
from neutrino.agent.l3.routers import L3, L3Config
from neutrino.agent.reconciler import ordered


@dataclass
class Fake:
    name: str
    after: tuple[str, ...] = ()
    scoped: bool = True


def test_the_agents_reconcilers_in_dependency_order() -> None:
    every = [L2(L2Config()), L3(L3Config()), Dhcp(None, None, lambda n, r: None),  # type: ignore[arg-type]
             Firewall(None), External(None)]
    for perm in itertools.permutations(every):
        names = [r.name for r in ordered(perm)]  # type: ignore[arg-type]
        assert names == ["dhcp", "external", "l3", "firewall", "l2"]
        for r in every:
            assert all(names.index(a) < names.index(r.name) for a in r.after)


def test_unknown_dependencies_are_no_constraint_and_cycles_are_refused() -> None:
    assert [r.name for r in ordered([Fake("b", ("a", "zz")), Fake("a")])] == ["a", "b"]  # type: ignore[list-item]
    with pytest.raises(AssertionError, match="cycle"):
        ordered([Fake("a", ("b",)), Fake("b", ("a",))])  # type: ignore[list-item]
