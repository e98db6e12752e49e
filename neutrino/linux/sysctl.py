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


def get_many(keys: list[str], *, netns: str | None = None) -> dict[str, str]:
    """Several values in one run of ``sysctl`` (one exec per namespace, not per key)."""
    if not keys:
        return {}
    lines = run(["sysctl", "-n", *keys], netns=netns).stdout.splitlines()
    return dict(zip(keys, (line.strip() for line in lines), strict=True))


def set_many(values: dict[str, str], *, netns: str | None = None) -> None:
    """Write several values in one run of ``sysctl``, in order."""
    if values:
        run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items())], netns=netns)
