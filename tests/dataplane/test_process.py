"""dnsmasq under supervision in a DHCP namespace, and atomic config files."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from neutrino import files, names
from neutrino.linux import addressing, devices, process
from neutrino.linux.errors import CommandError
from neutrino.linux.run import run

from .conftest import need, new_id

# A DNS query for vm1.example (type A) sent from inside the namespace: proves the
# daemon serves there, without a DHCP client on the test host.
_DNS_QUERY = r"""
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in "vm1.example".split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (sys.argv[1], 53))
answer = s.recv(512)
print(socket.inet_ntoa(answer[-4:]))
"""


def _resolves(ns: str, expected: str, timeout: float = 5.0) -> bool:
    """Ask the dnsmasq at 10.60.0.2 for vm1.example until it answers ``expected``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = run([sys.executable, "-c", _DNS_QUERY, "10.60.0.2"], netns=ns).stdout
        if answer.strip() == expected:
            return True
        time.sleep(0.1)
    return False


def _dnsmasq(tmp: Path, network_id: str, port_id: str, netns: str) -> process.Daemon:
    conf = tmp / "dnsmasq.conf"
    files.write_atomic(conf, "\n".join([
        "no-hosts", "no-resolv", "bind-interfaces", "except-interface=lo",
        f"interface={names.dhcp_ns_port(port_id)}",
        "dhcp-range=set:subnet0,10.60.0.0,static,255.255.255.0,86400s",
        f"dhcp-hostsfile={tmp / 'host'}", f"addn-hosts={tmp / 'addn_hosts'}",
        f"dhcp-leasefile={tmp / 'leases'}", "domain=example", ""]))
    files.write_atomic(tmp / "host", "fa:16:3e:00:00:01,host-10-60-0-11,10.60.0.11\n")
    files.write_atomic(tmp / "addn_hosts", "10.60.0.11\tvm1.example vm1\n")
    return process.Daemon(f"dnsmasq for network {network_id}",
                          ["dnsmasq", f"--conf-file={conf}", f"--pid-file={tmp / 'pid'}"],
                          tmp / "pid", netns=netns)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Where a daemon's files go.  dnsmasq drops root after it starts and re-reads its
    hosts files as its own user, so the directory must be world-traversable, which
    pytest's tmp_path (0700) is not."""
    path = Path(tempfile.mkdtemp(prefix="nt-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dhcp_ns(make_ns: Callable[[], str]) -> tuple[str, str, str]:
    """A qdhcp-style namespace with the DHCP port's inside end configured."""
    need("dnsmasq")
    ns, bridge_side = make_ns(), make_ns()
    port = new_id()
    devices.ensure_veth(names.dhcp_ns_port(port), names.dhcp_tap(port), netns=ns,
                        peer_netns=bridge_side)
    addressing.ensure_addresses(names.dhcp_ns_port(port), ["10.60.0.2/24"], netns=ns)
    return ns, new_id(), port


def test_dnsmasq_supervised(dhcp_ns: tuple[str, str, str], state_dir: Path) -> None:
    ns, network, port = dhcp_ns
    daemon = _dnsmasq(state_dir, network, port, ns)
    assert daemon.pid() is None and not daemon.alive()

    pid = daemon.start()
    assert daemon.alive() and daemon.pid() == pid
    assert process.namespace_pids(ns) == [pid], "it runs in the namespace, nothing else does"
    assert daemon.start() == pid, "starting a running daemon is a no-op"
    assert daemon.ensure() is False
    # dnsmasq reads its hosts files just after it detaches: allow it a moment.
    assert _resolves(ns, "10.60.0.11")

    # Reload after an atomic rewrite of the hosts file: same process, new data.
    assert files.write_atomic(state_dir / "addn_hosts", "10.60.0.12\tvm1.example vm1\n")
    assert daemon.reload() is True
    assert daemon.pid() == pid
    assert _resolves(ns, "10.60.0.12"), "dnsmasq did not pick up the new hosts file"

    # A crash is noticed and repaired.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while daemon.alive():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert daemon.ensure() is True
    new_pid = daemon.pid()
    assert new_pid is not None and new_pid != pid

    assert daemon.stop() is True
    assert daemon.pid() is None and not (state_dir / "pid").exists()
    assert not Path(f"/proc/{new_pid}/cmdline").exists() or \
        Path(f"/proc/{new_pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", \
        "the process is gone (at most an unreaped zombie of init)"
    assert process.namespace_pids(ns) == []
    assert daemon.stop() is False
    assert daemon.reload() is False


def test_start_failure_reports_stderr(dhcp_ns: tuple[str, str, str], tmp_path: Path) -> None:
    ns, _, _ = dhcp_ns
    daemon = process.Daemon("dnsmasq, misconfigured",
                            ["dnsmasq", "--dhcp-range=not-a-range",
                             f"--pid-file={tmp_path / 'pid'}"], tmp_path / "pid", netns=ns)
    with pytest.raises(CommandError) as info:
        daemon.start()
    assert info.value.returncode != 0 and "dhcp-range" in info.value.stderr
    assert not daemon.alive()


def test_recycled_pid_is_not_believed(tmp_path: Path) -> None:
    need()
    pid_file = tmp_path / "pid"
    daemon = process.Daemon("nobody", ["dnsmasq", f"--pid-file={pid_file}"], pid_file)
    # Our own pid is alive but its command line does not name that pid file.
    pid_file.write_text(f"{os.getpid()}\n")
    assert daemon.pid() is None
    assert daemon.stop() is False
    assert not pid_file.exists()


def test_write_atomic(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "opts"
    assert files.write_atomic(target, "tag:a,option:router,10.0.0.1\n") is True
    assert files.write_atomic(target, "tag:a,option:router,10.0.0.1\n") is False
    assert target.read_text() == "tag:a,option:router,10.0.0.1\n"
    assert files.write_atomic(target, b"x", mode=0o600) is True
    assert target.read_bytes() == b"x" and target.stat().st_mode & 0o777 == 0o600
    assert files.write_atomic(target, b"x", mode=0o644) is True, "a mode change is a change"
    assert sorted(p.name for p in target.parent.iterdir()) == ["opts"], "no temp file left"
    assert files.read(target) == "x" and files.read(tmp_path / "none") is None
    assert files.remove(target) is True and files.remove(target) is False
