"""What every reconciler shares: the :class:`Reconciler` protocol (desired / observe /
diff / apply / report), the order the loop runs them in (each declares what it comes
after), and plans of per-key operations applied with the failures kept per key (one
broken network never blocks the others)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: retry a failed key after 1, 2, 4 ... seconds, at most this long
MAX_BACKOFF = 60.0


class Op(Protocol):
    """One step of a plan.  ``key`` is what it belongs to (e.g. a bridge name)."""

    key: str


def apply_plan(plan: Sequence[Op], do: Callable[[Op], None], what: str) -> dict[str, Exception]:
    """Run the plan in order; once a key's step fails its later steps are skipped,
    the other keys go on.  Returns the failed keys and why."""
    failed: dict[str, Exception] = {}
    for op in plan:
        if op.key in failed:
            continue
        try:
            do(op)
        except Exception as exc:
            failed[op.key] = exc
            log.warning("%s: %s failed: %s", what, op, exc)
    return failed


@dataclass
class Backoff:
    """Keys that failed and when each may be tried again (exponential per key)."""

    tries: dict[str, int] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)

    def failed(self, key: str) -> None:
        n = self.tries.get(key, 0) + 1
        self.tries[key] = n
        self.not_before[key] = time.monotonic() + min(MAX_BACKOFF, 2.0 ** (n - 1))

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.tries.pop(key, None)
            self.not_before.pop(key, None)

    def due(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        return [k for k, t in self.not_before.items() if t <= now]

    def next_due(self) -> float | None:
        return min(self.not_before.values(), default=None)


# -- the protocol every reconciler implements ---------------------------------------------

@dataclass
class Pass:
    """What one pass is about, shared by the reconcilers it runs in order.

    ``networks`` and ``routers`` are the keys asked about (None: a full pass, every key,
    with the sweep); a pass for routers only has ``networks == []``.  ``outcomes`` holds
    what the reconcilers that ran before said (by name): a later one reads the facts an
    earlier one declared (L2 plugs only the taps the firewall has decided for)."""

    snapshot: Any
    before: Any
    networks: list[str] | None = None
    routers: list[str] | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.networks is None

    @property
    def routers_only(self) -> bool:
        return self.networks is not None and not self.networks


@dataclass(frozen=True)
class Outcome:
    """What one reconciler's pass came to: the dirty keys (network ids, ``router:<id>``)
    to retry with backoff, those to look at again in the next pass, and facts for the
    reconcilers after it."""

    planned: int = 0
    failed: frozenset[str] = frozenset()
    again: frozenset[str] = frozenset()
    facts: Mapping[str, Any] = field(default_factory=dict)


class Reports(Protocol):
    """Where reconcilers say what they realised (the server link buffers and sends it)."""

    def port(self, port_id: str, component: str, up: bool, revision: int) -> None: ...

    def l3(self, routers: Sequence[Mapping[str, Any]],
           floatingips: Sequence[Mapping[str, Any]]) -> None: ...


class Reconciler(Protocol):
    """``desired`` what the pass's snapshot wants, ``observe`` what the kernel holds,
    ``diff`` (pure) the steps between them, ``apply`` them (idempotent, failures kept per
    key), ``report`` what was realised.  ``after`` names the reconcilers whose outcome this
    one needs (the loop runs them first); ``scoped`` ones have nothing to do in a pass for
    routers only."""

    name: str
    after: tuple[str, ...]
    scoped: bool

    def desired(self, p: Pass) -> Any: ...

    def observe(self, p: Pass, want: Any) -> Any: ...

    def diff(self, p: Pass, want: Any, seen: Any) -> Sequence[Op]: ...

    def apply(self, p: Pass, plan: Sequence[Op]) -> dict[str, Exception]: ...

    def report(self, p: Pass, want: Any, seen: Any, plan: Sequence[Op],
               failed: Mapping[str, Exception], out: Reports) -> Outcome: ...


def ordered(reconcilers: Iterable[Reconciler]) -> list[Reconciler]:
    """The reconcilers in an order where each comes after all it names in ``after``
    (ties by name, so the order never depends on how they were listed).  A name in
    ``after`` that is not there is no constraint; a cycle is a bug."""
    given = list(reconcilers)
    by_name = {r.name: r for r in given}
    assert len(by_name) == len(given), "two reconcilers of one name"
    pending = {n: {a for a in r.after if a in by_name} for n, r in by_name.items()}
    out: list[Reconciler] = []
    while pending:
        ready = sorted(n for n, deps in pending.items() if not deps)
        assert ready, f"reconcilers depend on each other in a cycle: {sorted(pending)}"
        for n in ready:
            out.append(by_name[n])
            del pending[n]
        for deps in pending.values():
            deps.difference_update(ready)
    return out


def run_pass(reconcilers: Sequence[Reconciler], p: Pass, out: Reports) -> Pass:
    """Each reconciler in turn (``reconcilers`` as :func:`ordered` gives them); the
    outcomes are in ``p.outcomes``."""
    for r in reconcilers:
        if r.scoped and p.routers_only:
            continue  # a floating IP, a route: no bridge, filter or DHCP to look at
        want = r.desired(p)
        seen = r.observe(p, want)
        plan = r.diff(p, want, seen)
        failed = r.apply(p, plan)
        p.outcomes[r.name] = r.report(p, want, seen, plan, failed, out)
    return p
