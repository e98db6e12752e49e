"""Supervision of helper daemons: dnsmasq now, keepalived and HAProxy later.

A daemon here is a program that puts itself in the background and writes a pid
file (dnsmasq does by default, keepalived too, ``haproxy -D -p``).  We keep no
child process: the pid file is the record, so restarting the agent leaves every
daemon serving, and a later agent finds them again.  A pid is only believed if
that process's command line names the same pid file, so a recycled pid is never
signalled by mistake.

dnsmasq drops root once started and re-reads its hosts files as its own user on
SIGHUP, so a daemon's files must live in a directory that user can traverse.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neutrino import files
from neutrino.linux.errors import LinuxError
from neutrino.linux.run import NETNS_DIR, run

log = logging.getLogger(__name__)

_POLL = 0.02


@dataclass(frozen=True)
class Daemon:
    """One supervised daemon: ``argv`` must make it daemonize and write ``pid_file``."""

    name: str  # for messages, e.g. "dnsmasq for network <id>"
    argv: Sequence[str]
    pid_file: Path
    netns: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pid_file", Path(self.pid_file))
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        assert any(str(self.pid_file) in a for a in self.argv), \
            f"{self.name}: argv must name the pid file, it is how the pid is verified"

    def pid(self) -> int | None:
        """The pid of the running daemon, or None if it is not running."""
        text = files.read(self.pid_file)
        if not text or not text.strip().isdigit():
            return None
        pid = int(text.strip())
        return pid if _running(pid) and self._owns(pid) else None

    def alive(self) -> bool:
        return self.pid() is not None

    def _owns(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return False
        return str(self.pid_file).encode() in cmdline

    def start(self, timeout: float = 10.0) -> int:
        """Start the daemon unless it runs; return its pid once the pid file names
        a live process.  A daemon that fails at start raises CommandError with its
        stderr (dnsmasq reports config errors before it detaches)."""
        pid = self.pid()
        if pid is not None:
            return pid
        files.remove(self.pid_file)  # stale: it would be mistaken for the new one
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        run(self.argv, netns=self.netns, timeout=timeout)
        deadline = time.monotonic() + timeout
        while (pid := self.pid()) is None:
            if time.monotonic() > deadline:
                raise LinuxError(f"{self.name}: started but no live pid in {self.pid_file} "
                                 f"after {timeout}s")
            time.sleep(_POLL)
        log.info("started %s (pid %d%s)", self.name, pid,
                 f", netns {self.netns}" if self.netns else "")
        return pid

    def ensure(self, timeout: float = 10.0) -> bool:
        """Start the daemon if it is not running (e.g. it crashed); True if started."""
        if self.alive():
            return False
        self.start(timeout)
        return True

    def reload(self) -> bool:
        """SIGHUP: dnsmasq re-reads its hosts/opts files, keepalived and HAProxy
        their config.  False if the daemon is not running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 5.0) -> bool:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the pid
        file is removed.  False if it was not running."""
        pid = self.pid()
        files.remove(self.pid_file)
        if pid is None:
            return False
        terminate(pid, timeout)
        log.info("stopped %s (pid %d)", self.name, pid)
        return True

    def restart(self, timeout: float = 10.0) -> int:
        self.stop()
        return self.start(timeout)


def _running(pid: int) -> bool:
    """True if ``pid`` exists and has not exited; a zombie (exited, not yet reaped
    by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL and wait for it to go."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _running(pid):
                return
            time.sleep(_POLL)
    raise LinuxError(f"pid {pid} survived SIGKILL for 5s")


def namespace_pids(netns: str) -> list[int]:
    """Every live process whose network namespace is ``netns`` (``ip netns pids``)."""
    try:
        ns = os.stat(os.path.join(NETNS_DIR, netns))
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if (st.st_dev, st.st_ino) == (ns.st_dev, ns.st_ino) and _running(int(entry)):
            pids.append(int(entry))
    return sorted(pids)
