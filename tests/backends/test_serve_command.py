"""`neutrino serve` as an operator runs it: a config file, PostgreSQL, several workers."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.backends.serving import serve


def test_serve_with_workers_on_postgresql(tmp_path: Path, database_factory) -> None:
    with serve(tmp_path, database_factory("postgresql"), workers=2,
               quotas={"network": 3}) as served:
        base = f"{served.url}/v2.0"
        statuses = [requests.post(base + "/networks", json={"network": {"name": f"n{i}"}},
                                  timeout=10).status_code for i in range(4)]
        # the quota from the config file holds across both worker processes
        assert statuses == [201, 201, 201, 409]
        assert len(requests.get(base + "/networks", timeout=10).json()["networks"]) == 3
