"""``neutrino serve`` as a child process, as an operator runs it (httptools, uvloop,
a config file; several workers if asked)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import free_port

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


@dataclass
class Served:
    url: str  # http://127.0.0.1:<port>
    proc: subprocess.Popen


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return f'"{value}"'


@contextmanager
def serve(tmp: Path, database_url: str, *, quotas: dict[str, int] | None = None,
          **settings: object) -> Iterator[Served]:
    """Run ``neutrino serve`` (noauth unless told) until the block ends; the process
    must then stop cleanly on SIGTERM."""
    port = free_port()
    lines = [f'database_url = "{database_url}"', f"port = {port}",
             *(f"{k} = {_toml(v)}" for k, v in {"auth": "noauth", **settings}.items())]
    if quotas:
        lines += ["[quotas]", *(f"{k} = {v}" for k, v in quotas.items())]
    cfg = tmp / "neutrino.toml"
    cfg.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([NEUTRINO, "serve", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/v2.0/networks", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.2)
        yield Served(url, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
