"""Every error the HTTP layer can produce comes in the NeutronError envelope.

The requests here are written byte by byte on a socket: most are not HTTP any
client library would send.  They go to both HTTP stacks Neutrino runs on:
``neutrino serve`` (httptools, what operators run) and the tests' in-thread server
(h11).  Before the fix, uvicorn answered the parser's refusals itself, in plain
text ("Invalid HTTP request received."), a request line with 10,000 query
parameters among them; nothing bounded a request's body, and httptools bounded
neither the headers nor (below 64 KiB) the URL.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from tests.backends.serving import serve
from tests.conftest import start_server

HEAD = b"Host: x\r\nConnection: close\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def error(self, status: int, type_: str | None = None, contains: str = "") -> dict:
        assert self.status == status, (self.status, self.body[:300])
        assert self.headers.get(b"content-type") == b"application/json", self.headers
        err = orjson.loads(self.body)["NeutronError"]
        assert set(err) == {"type", "message", "detail"} and err["message"], err
        if type_ is not None:
            assert err["type"] == type_, err
        assert contains in err["message"], err
        return err


def exchange(port: int, data: bytes, *, finish: bool = True) -> Answer:
    """Send ``data`` (half-close after it unless ``finish`` is False: a request that
    never ends) and read the one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        # refused before it all went, the answer is still there to read
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        if finish:
            with contextlib.suppress(OSError):  # the server may have closed already
                s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                if len(body) >= int(headers.get(b"content-length", b"0")):
                    break
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 "), out[:200]
    headers = {k.lower(): v for k, v in (line.split(b": ", 1) for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, body)


@dataclass
class Front:
    kind: str  # "httptools" (serve) or "h11" (the tests' in-thread server)
    port: int


@pytest.fixture(scope="module", params=["httptools", "h11"])
def front(request: pytest.FixtureRequest, database_factory,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    url = database_factory("sqlite")
    tmp = tmp_path_factory.mktemp("front")
    if request.param == "httptools":
        with serve(tmp, url) as served:
            yield Front("httptools", int(served.url.rsplit(":", 1)[1]))
        return
    srv = start_server(tmp, url)
    yield Front("h11", srv.settings.port)
    srv.stop()


def get(target: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + HEAD + extra + b"\r\n"


def post(body: bytes, extra: bytes = b"Content-Type: application/json\r\n") -> bytes:
    return (b"POST /v2.0/networks HTTP/1.1\r\n" + HEAD + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_too_many_query_parameters(front: Front) -> None:
    # the report's request line: 10,000 parameters
    many = b"&".join(b"a=1" for _ in range(10000))
    exchange(front.port, get(b"/v2.0/networks?" + many)).error(
        400, "HTTPBadRequest", "more than 1000 parameters")
    exchange(front.port, get(b"/v2.0/networks?" + b"&".join([b"fields=id"] * 1001))).error(
        400, "HTTPBadRequest", "more than 1000 parameters")
    assert exchange(front.port, get(b"/v2.0/networks?" + b"&".join([b"fields=id"] * 1000))) \
        .status == 200


def test_heads_over_the_limit(front: Front) -> None:
    exchange(front.port, get(b"/v2.0/networks/" + b"x" * 70000)).error(
        414, "HTTPRequestURITooLong", "(65536 bytes)")
    exchange(front.port, get(b"/v2.0/networks", b"X-Big: " + b"y" * 70000 + b"\r\n")).error(
        431, "HTTPRequestHeaderFieldsTooLarge", "(65536 bytes)")
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(700))
    exchange(front.port, get(b"/v2.0/networks", many)).error(
        431, "HTTPRequestHeaderFieldsTooLarge")
    # a header that never ends is refused as it grows, not buffered for ever
    endless = b"GET /v2.0/networks HTTP/1.1\r\n" + HEAD + b"X-Endless: " + b"z" * 200000
    exchange(front.port, endless, finish=False).error(431, "HTTPRequestHeaderFieldsTooLarge")
    # just under the limit is served
    assert exchange(front.port, get(b"/v2.0/networks", b"X-Big: " + b"y" * 60000 + b"\r\n")) \
        .status == 200


def test_bodies_over_the_limit(front: Front) -> None:
    big = b'{"network": {"name": "' + b"n" * 1048576 + b'"}}'
    assert len(big) > 1048576
    exchange(front.port, post(big)).error(413, "HTTPRequestEntityTooLarge",
                                          "max_request_body_size (1048576 bytes)")
    # a chunked body says no length: it is counted as it comes
    chunk = b"a" * 65536
    chunked = (b"POST /v2.0/networks HTTP/1.1\r\n" + HEAD
               + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20))
               + b"0\r\n\r\n")
    exchange(front.port, chunked).error(413, "HTTPRequestEntityTooLarge")
    # under the limit, the body is read (and here refused for what it says)
    exchange(front.port, post(b'{"network": {"name": "' + b"n" * 300 + b'"}}')).error(
        400, None, "exceeds maximum length of 255")


@pytest.mark.parametrize("name,request_bytes", [
    ("raw non-ASCII path", get(b"/v2.0/networks/\xc3\xa9")),
    ("invalid UTF-8 path", get(b"/v2.0/networks/\xff\xfe")),
    ("invalid UTF-8 query", get(b"/v2.0/networks?name=\xff")),
    ("non-numeric Content-Length", post(b"{}").replace(b"Content-Length: 2",
                                                      b"Content-Length: two")),
    ("two Content-Lengths", b"POST /v2.0/networks HTTP/1.1\r\n" + HEAD
     + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    ("broken chunk", b"POST /v2.0/networks HTTP/1.1\r\n" + HEAD
     + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("header without a colon", get(b"/v2.0/networks", b"NoColon\r\n")),
    ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
])
def test_malformed_requests(front: Front, name: str, request_bytes: bytes) -> None:
    exchange(front.port, request_bytes).error(400, "HTTPBadRequest", "Invalid HTTP request")


def test_what_the_router_refuses(front: Front) -> None:
    exchange(front.port, get(b"/nowhere")).error(404, "HTTPNotFound")
    exchange(front.port, get(b"/v2.0/nowhere")).error(404, "HTTPNotFound")
    for method in (b"PATCH", b"OPTIONS"):
        answer = exchange(front.port, method + b" /v2.0/networks HTTP/1.1\r\n" + HEAD + b"\r\n")
        answer.error(405, "HTTPMethodNotAllowed")
    head = exchange(front.port, b"HEAD /v2.0/networks HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert head.status == 200 and head.body == b""
    # a method no parser knows: httptools refuses it, h11 hands it to the router
    answer = exchange(front.port, b"BREW /v2.0/networks HTTP/1.1\r\n" + HEAD + b"\r\n")
    answer.error(400 if front.kind == "httptools" else 405)


def test_percent_encoding_and_bodies(front: Front) -> None:
    # decoded leniently (a bad escape stays as it is, bad UTF-8 becomes U+FFFD): no
    # stored name or id holds either, so they are simply not found
    exchange(front.port, get(b"/v2.0/networks/%zz")).error(404, "NetworkNotFound")
    exchange(front.port, get(b"/v2.0/networks/%ff%fe")).error(404, "NetworkNotFound")
    answer = exchange(front.port, get(b"/v2.0/networks?name=%ff%fe"))
    assert answer.status == 200 and orjson.loads(answer.body) == {"networks": []}
    exchange(front.port, get(b"/v2.0/networks?name=%00")).error(400, "HTTPBadRequest", "NUL")
    exchange(front.port, post(b"{not json")).error(400, "HTTPBadRequest",
                                                   "Body contains invalid data")
    exchange(front.port, post(b"<network/>", b"Content-Type: application/xml\r\n")).error(
        400, "HTTPBadRequest", "Body contains invalid data")
    # the body is JSON whatever the client calls it (upstream reads it so too; `curl -d`
    # says application/x-www-form-urlencoded)
    body = b'{"network": {"name": "typed"}}'
    assert exchange(front.port, post(body, b"Content-Type: text/plain\r\n")).status == 201


@pytest.fixture(scope="module")
def tight(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    srv = start_server(tmp_path_factory.mktemp("tight"), database_factory("sqlite"),
                       max_request_body_size=100, max_query_params=3, max_header_size=2048)
    yield srv.settings.port
    srv.stop()


def test_limits_follow_their_settings(tight: int) -> None:
    exchange(tight, post(b'{"network": {"name": "' + b"n" * 100 + b'"}}')).error(
        413, "HTTPRequestEntityTooLarge", "(100 bytes)")
    assert exchange(tight, post(b'{"network": {"name": "small"}}')).status == 201
    exchange(tight, get(b"/v2.0/networks?fields=id&fields=name&fields=mtu&fields=status")) \
        .error(400, "HTTPBadRequest", "more than 3 parameters")
    exchange(tight, get(b"/v2.0/networks/" + b"x" * 3000)).error(414, None, "(2048 bytes)")
