"""Octavia's error envelope, which its clients parse: ``faultcode`` (``Client`` for a
4xx, ``Server`` for a 5xx), ``faultstring`` (what is wrong) and ``debuginfo``."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from neutrino import errors

#: where the load-balancer API is served (its refusals are in this envelope)
PATH = "/load-balancer"


def fault_body(err: errors.NeutronError) -> dict:
    return {"faultcode": "Client" if err.status < 500 else "Server",
            "faultstring": err.message, "debuginfo": None}


def fault(err: errors.NeutronError, request_id: str = "") -> Response:
    headers = {"X-Openstack-Request-Id": request_id} if request_id else {}
    if err.status == 413:  # the rest of the body is never read
        headers["Connection"] = "close"
    return Response(orjson.dumps(fault_body(err)), status_code=err.status,
                    media_type="application/json", headers=headers or None)
