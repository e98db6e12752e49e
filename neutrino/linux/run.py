"""The one way Neutrino runs a program.

Everything that execs (``nft``, ``dnsmasq``, ``sysctl`` …) goes through ``run``:
one place for the namespace switch, the timeout, the locale and the error that
says which command failed, where, with which exit code and stderr.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neutrino.linux.errors import CommandError, CommandNotFound, CommandTimeout, NamespaceNotFound

log = logging.getLogger(__name__)

NETNS_DIR = "/run/netns"
DEFAULT_TIMEOUT = 30.0
# Stable, parseable messages ("No such file or directory") whatever the host's locale.
_BASE_ENV = {"LC_ALL": "C", "LANG": "C"}


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def netns_argv(netns: str) -> list[str]:
    """The prefix that runs a program inside a named namespace.

    ``ip netns exec`` rather than setns() in a pre-exec hook: it is safe in a threaded
    process and also applies /etc/netns/<name> and a namespace-local /sys, as
    operators expect.
    """
    return ["ip", "netns", "exec", netns]


def run(argv: Sequence[str], *, netns: str | None = None, input: str | bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT, check: bool = True,
        env: Mapping[str, str] | None = None) -> Result:
    """Run ``argv`` to completion (in ``netns`` if given) and return its output.

    With ``check`` a non-zero exit raises CommandError carrying argv, exit code and
    stderr; a missing program raises CommandNotFound, a timeout CommandTimeout (the
    program is killed), a missing namespace NamespaceNotFound.
    """
    argv = [str(a) for a in argv]
    assert argv, "nothing to run"
    full = argv
    if netns is not None:
        if not os.path.exists(os.path.join(NETNS_DIR, netns)):
            raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
        full = netns_argv(netns) + argv
    data = input.encode() if isinstance(input, str) else input
    started = time.monotonic()
    try:
        proc = subprocess.run(full, input=data, capture_output=True, timeout=timeout,
                              env={**os.environ, **_BASE_ENV, **(env or {})},
                              stdin=None if data is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise CommandNotFound(argv, 127, f"{full[0]}: not found", netns=netns) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(argv, -1, f"timed out after {timeout}s; "
                             f"stderr: {_text(exc.stderr).strip()}", netns=netns) from exc
    result = Result(tuple(argv), proc.returncode, _text(proc.stdout), _text(proc.stderr))
    log.debug("ran %s%s -> %d in %.3fs", " ".join(argv), f" (netns {netns})" if netns else "",
              proc.returncode, time.monotonic() - started)
    if (netns is not None and proc.returncode != 0
            and result.stderr.startswith(f'exec of "{argv[0]}" failed')):
        # `ip netns exec` reports a missing program as "exec of "x" failed: ...".
        raise CommandNotFound(argv, 127, result.stderr, netns=netns)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, result.stderr, result.stdout, netns=netns)
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def passthrough(argv: Sequence[str], *, netns: str | None = None) -> int:
    """Run ``argv`` (in ``netns``) with the caller's terminal: its output is not
    captured, its exit code returned (``neutrino instance exec``)."""
    argv = [str(a) for a in argv]
    assert argv, "nothing to run"
    if netns is not None and not os.path.exists(os.path.join(NETNS_DIR, netns)):
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
    full = (netns_argv(netns) if netns is not None else []) + argv
    try:
        return subprocess.call(full)
    except FileNotFoundError as exc:
        raise CommandNotFound(argv, 127, f"{full[0]}: not found", netns=netns) from exc


#: helpers started without waiting (see ``spawn``), reaped as they finish
_spawned: list[subprocess.Popen] = []


def spawn(argv: Sequence[str], *, netns: str | None = None) -> None:
    """Start ``argv`` (in ``netns``) and return at once: for short helpers whose outcome
    nobody waits for (gratuitous ARP takes a second per probe).  Output is discarded;
    finished helpers are reaped on the next call."""
    argv = [str(a) for a in argv]
    assert argv, "nothing to run"
    _spawned[:] = [p for p in _spawned if p.poll() is None]
    if netns is not None and not os.path.exists(os.path.join(NETNS_DIR, netns)):
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
    full = (netns_argv(netns) if netns is not None else []) + argv
    try:
        _spawned.append(subprocess.Popen(full, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env={**os.environ, **_BASE_ENV}))
    except FileNotFoundError as exc:
        raise CommandNotFound(argv, 127, f"{full[0]}: not found", netns=netns) from exc
    log.debug("spawned %s%s", " ".join(argv), f" (netns {netns})" if netns else "")
