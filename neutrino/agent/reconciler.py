"""What every reconciler shares: plans of per-key operations, applied with the
failures kept per key (one broken network never blocks the others)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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
