"""Config and state files for helper daemons, written atomically.

A daemon reloading its config (dnsmasq on SIGHUP) must never read a half-written
file, so every write goes to a temporary file in the same directory, is flushed
to disk and renamed over the old one; rename is atomic within a filesystem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``data`` unless it already holds exactly that.

    Returns True if the file changed, so callers reload a daemon only when needed.
    Missing parent directories are created.
    """
    target = Path(path)
    content = data.encode() if isinstance(data, str) else data
    try:
        if target.read_bytes() == content and (target.stat().st_mode & 0o7777) == mode:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def read(path: str | os.PathLike[str]) -> str | None:
    """The file's text, or None if it does not exist."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return None


def remove(path: str | os.PathLike[str]) -> bool:
    """Delete the file; False if it was not there."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    return True
