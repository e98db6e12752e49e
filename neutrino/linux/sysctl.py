"""Kernel parameters (sysctl), per network namespace.

/proc/sys/net shows the namespace of the process that reads it, so values inside
a namespace are read and written by running ``sysctl`` there.
"""

from __future__ import annotations

from neutrino.linux.run import run


def get(key: str, *, netns: str | None = None) -> str:
    return run(["sysctl", "-n", key], netns=netns).stdout.strip()


def ensure(key: str, value: str | int, *, netns: str | None = None) -> bool:
    """Set ``key`` to ``value`` unless it already is; True if it changed."""
    want = str(value)
    if get(key, netns=netns) == want:
        return False
    run(["sysctl", "-w", f"{key}={want}"], netns=netns)
    return True
