"""The HTTP layer's own refusals, in the NeutronError envelope like every other error.

Two places can refuse a request before a handler runs:

- the HTTP parser, which answers malformed requests (a bad request line, raw bytes
  that are not ASCII in the URL, a broken chunk, both Content-Length and
  Transfer-Encoding) and, here, requests whose line and headers are over
  ``max_header_size`` (414 for the URL, 431 for the headers).  uvicorn answers these
  in plain text; :class:`HttpToolsEnvelope` (what ``serve`` and ``up`` run) and
  :class:`H11Envelope` (what the tests' in-thread servers run) answer in the
  envelope.  uvicorn's one setting for the size of a request head,
  ``h11_max_incomplete_event_size``, carries the limit to both.
- :class:`RequestLimits`, an ASGI middleware, for what the app sees first: more
  query parameters than ``max_query_params`` (400) and bodies over
  ``max_request_body_size`` (413, before a byte of them is read when the client
  says its length).
"""

from __future__ import annotations

import http
from typing import Any

import h11
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from neutrino import errors
from neutrino.api.loadbalancer.envelope import PATH as LB_PATH
from neutrino.api.loadbalancer.envelope import fault_body

#: when no limit is configured
DEFAULT_HEADER_SIZE = 65536
#: a body said to be over the limit is still read (and dropped) up to this many times
#: the limit before the refusal, so that a client sending it all before it reads
#: sees the 413 rather than a reset connection; a bigger one is refused at once
DRAIN_FACTOR = 4


#: paths of the embedded identity API, whose clients read Keystone's error shape
IDENTITY_PATHS = ("/identity", "/v3")


def _envelope(err: errors.NeutronError, path: str = "") -> tuple[int, bytes]:
    if path.startswith(LB_PATH):
        return err.status, orjson.dumps(fault_body(err))
    if path.startswith(IDENTITY_PATHS):
        return err.status, orjson.dumps({"error": {
            "code": err.status, "title": http.HTTPStatus(err.status).phrase,
            "message": err.message}})
    return err.status, orjson.dumps(err.body())


def _malformed(reason: str) -> errors.NeutronError:
    reason = reason.rstrip(".") or "the request could not be parsed"
    return errors.BadRequest(f"Invalid HTTP request: {reason}.")


def _uri_too_long(limit: int) -> errors.NeutronError:
    return errors.UriTooLong(f"The request URL is longer than the server accepts "
                             f"({limit} bytes).")


def _headers_too_large(limit: int) -> errors.NeutronError:
    return errors.HeadersTooLarge(f"The request's headers are larger than the server accepts "
                                  f"({limit} bytes).")


def _head_limit(config: Any) -> int:
    return config.h11_max_incomplete_event_size or DEFAULT_HEADER_SIZE


class _Refused(Exception):
    """Raised in a parser callback to stop a request the server will not take."""


class HttpToolsEnvelope(HttpToolsProtocol):
    """uvicorn's httptools protocol, with limits on the request head and its refusals
    in the envelope.

    httptools itself bounds nothing: a header is buffered however long it grows.  The
    head's size is summed as the parser hands over its parts, and the bytes that
    arrive while a head is still incomplete are counted too (a header that never
    ends is never handed over).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = _head_limit(self.config)
        self._in_head = True
        self._head_bytes = 0  # received while the head is incomplete
        self._head_size = 0  # of the URL and the headers handed over so far
        self._refusal: errors.NeutronError | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        try:
            super().data_received(data)
        finally:
            if self._in_head and self._head_bytes > self._limit \
                    and not self.transport.is_closing():
                self._refuse(_headers_too_large(self._limit))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        self._refusal = None

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)
        if len(self.url) > self._limit:
            self._refusal = _uri_too_long(self._limit)
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > self._limit:
            self._refusal = _headers_too_large(self._limit)
            raise _Refused

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        try:
            super().on_headers_complete()
        except UnicodeDecodeError:  # a path of raw bytes that are not ASCII
            self._refusal = _malformed("the URL holds bytes that are not ASCII; "
                                       "percent-encode them")
            raise

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        # uvicorn has caught the parser's error (and dropped it): say what is known
        self._refuse(self._refusal or _malformed("it is not valid HTTP/1.1"))

    def _refuse(self, err: errors.NeutronError) -> None:
        status, body = _envelope(err)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: " + str(len(body)).encode() + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class H11Envelope(H11Protocol):
    """uvicorn's h11 protocol with the same head limits and its refusals in the
    envelope.

    h11 bounds only a head that is still incomplete (``h11_max_incomplete_event_size``);
    one that arrived whole is measured here as the request comes out of the parser.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = _head_limit(self.config)
        self._refusal: errors.NeutronError | None = None
        next_event = self.conn.next_event

        def measured() -> Any:
            try:
                event = next_event()
            except h11.RemoteProtocolError as exc:
                # for send_400_response, which is not told why
                self._refusal = self._incomplete_refusal(exc)
                raise
            if isinstance(event, h11.Request):
                self._refusal = self._request_refusal(event)
                if self._refusal is not None:
                    raise h11.RemoteProtocolError(self._refusal.message)
            return event

        self.conn.next_event = measured  # type: ignore[method-assign]

    def _incomplete_refusal(self, exc: h11.RemoteProtocolError) -> errors.NeutronError:
        if exc.error_status_hint != 431:
            # h11's words, without the bytes it quotes after them
            return _malformed(str(exc).split(":", 1)[0])
        pending, _ = self.conn.trailing_data
        if b"\r\n" not in pending:  # still in the request line
            return _uri_too_long(self._limit)
        return _headers_too_large(self._limit)

    def _request_refusal(self, event: h11.Request) -> errors.NeutronError | None:
        if len(event.target) > self._limit:
            return _uri_too_long(self._limit)
        size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
        if size > self._limit:
            return _headers_too_large(self._limit)
        return None

    def send_400_response(self, msg: str) -> None:
        status, body = _envelope(self._refusal or _malformed(""))
        response = h11.Response(status_code=status, reason=http.HTTPStatus(status).phrase,
                                headers=[(b"content-type", b"application/json"),
                                         (b"content-length", str(len(body)).encode()),
                                         (b"connection", b"close")])
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def _response(err: errors.NeutronError, path: str) -> list[Message]:
    status, body = _envelope(err, path)
    return [{"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]},
            {"type": "http.response.body", "body": body}]


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class RequestLimits:
    """Refuse requests over the query and body limits before the app reads them."""

    def __init__(self, app: ASGIApp, max_body: int, max_params: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_params = max_params

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            length = self._length(scope)
            if length is not None and length > self.max_body:
                refusal = self._too_large()
                if length <= DRAIN_FACTOR * self.max_body:
                    await _drain(receive)
        if refusal is not None:
            for message in _response(refusal, scope.get("path", "")):
                await send(message)
            return
        await self.app(scope, self._counted(receive), send)

    def _refusal(self, scope: Scope) -> errors.NeutronError | None:
        query: bytes = scope.get("query_string", b"")
        if query and query.count(b"&") >= self.max_params \
                and sum(1 for part in query.split(b"&") if part) > self.max_params:
            return errors.BadRequest(f"Invalid query string: more than {self.max_params} "
                                     f"parameters.")
        return None

    @staticmethod
    def _length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value)  # the parser has checked it is a number
        return None

    def _too_large(self) -> errors.NeutronError:
        return errors.PayloadTooLarge(f"Request is too large: the body is larger than "
                                      f"max_request_body_size ({self.max_body} bytes).")

    def _counted(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body growing past the limit (a chunked one, whose
        length nobody said)."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_large()
            return message

        return counted
