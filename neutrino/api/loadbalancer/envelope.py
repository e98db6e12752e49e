"""Octavia's error envelope, which its clients parse: ``faultcode`` (``Client`` for a
4xx, ``Server`` for a 5xx), ``faultstring`` (what is wrong) and ``debuginfo``."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from neutrino import errors


def fault(err: errors.NeutronError, request_id: str = "") -> Response:
    body = {"faultcode": "Client" if err.status < 500 else "Server",
            "faultstring": err.message, "debuginfo": None}
    headers = {"X-Openstack-Request-Id": request_id} if request_id else None
    return Response(orjson.dumps(body), status_code=err.status, media_type="application/json",
                    headers=headers)
