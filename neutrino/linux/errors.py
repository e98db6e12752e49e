"""Exceptions of the ``linux`` layer: say what was asked and what the kernel answered."""

from __future__ import annotations

from collections.abc import Sequence


class LinuxError(Exception):
    """Base of every error the ``linux`` layer raises."""


class CommandError(LinuxError):
    """A program exited non-zero (or could not be run at all)."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str,
                 stdout: str = "", netns: str | None = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        self.netns = netns
        where = f" in netns {netns}" if netns else ""
        detail = stderr.strip() or stdout.strip() or "no output"
        super().__init__(f"{' '.join(self.argv)!r}{where} exited {returncode}: {detail}")


class CommandNotFound(CommandError):
    """The program is not installed (exit code 127, like a shell)."""


class CommandTimeout(CommandError):
    """The program ran longer than its timeout and was killed."""


class NotSupported(LinuxError):
    """The running kernel cannot do this (module not built, feature missing)."""


class Conflict(LinuxError):
    """A kernel object with our name exists but is not what we would have made."""


class NamespaceNotFound(LinuxError):
    """The named network namespace does not exist."""


class KernelError(LinuxError):
    """The kernel refused a netlink request; ``errno`` says why."""

    def __init__(self, what: str, errno: int, reason: str) -> None:
        self.errno = errno
        self.reason = reason
        super().__init__(f"{what}: {reason} (errno {errno})")
