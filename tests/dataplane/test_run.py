"""run(): the one way to run a program, in the host or in a namespace."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from neutrino.linux import devices, sysctl
from neutrino.linux.errors import CommandError, CommandNotFound, CommandTimeout, NamespaceNotFound
from neutrino.linux.run import run

from .conftest import new_id


def test_runs_inside_the_namespace(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_bridge("brqonly", netns=ns)
    inside = json.loads(run(["ip", "-j", "link", "show"], netns=ns).stdout)
    assert sorted(link["ifname"] for link in inside) == ["brqonly", "lo"]
    outside = json.loads(run(["ip", "-j", "link", "show"]).stdout)
    assert "brqonly" not in {link["ifname"] for link in outside}


def test_input_and_result() -> None:
    result = run(["cat"], input="hello\n")
    assert (result.returncode, result.stdout, result.stderr, result.ok) == (0, "hello\n", "", True)
    assert result.argv == ("cat",)


def test_failure_carries_argv_exit_code_and_stderr(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    with pytest.raises(CommandError) as info:
        run(["ip", "link", "show", "nosuchdev0"], netns=ns)
    err = info.value
    assert err.argv == ["ip", "link", "show", "nosuchdev0"] and err.netns == ns
    assert err.returncode != 0 and "nosuchdev0" in err.stderr
    assert "nosuchdev0" in str(err) and ns in str(err)
    unchecked = run(["ip", "link", "show", "nosuchdev0"], netns=ns, check=False)
    assert not unchecked.ok and "nosuchdev0" in unchecked.stderr


def test_missing_program_timeout_and_namespace(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    for where in (None, ns):
        with pytest.raises(CommandNotFound) as info:
            run(["neutrino-no-such-program"], netns=where)
        assert info.value.returncode == 127
    with pytest.raises(CommandTimeout):
        run(["sleep", "5"], netns=ns, timeout=0.3)
    with pytest.raises(NamespaceNotFound):
        run(["true"], netns=f"nt-test-{new_id()[:8]}")


def test_sysctl_per_namespace(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    host_value = sysctl.get("net.ipv4.ip_forward")
    target = "0" if host_value == "1" else "1"
    assert sysctl.ensure("net.ipv4.ip_forward", target, netns=ns) is True
    assert sysctl.ensure("net.ipv4.ip_forward", target, netns=ns) is False
    assert sysctl.get("net.ipv4.ip_forward", netns=ns) == target
    assert sysctl.get("net.ipv4.ip_forward") == host_value, "the host is untouched"
