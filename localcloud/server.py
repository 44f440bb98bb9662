"""moto's server on loopback, with its per-request backend lookup cached and its connections kept alive.

For every request moto's `DomainDispatcherApplication` finds the backend under one global lock, and the
lookup lists moto's package directory (`os.listdir` and an `isdir` per entry, twice for most requests)
before matching the host against every service's URL patterns. Under the demo's traffic the server's
threads queued on that lock. The answer depends on the host alone and the package does not change while
it runs, so both are cached. Delete this the day moto caches them itself.

werkzeug's development server, which moto's is, closes every connection after its response, so each AWS
call of a function or a command opened a new one: a TCP handshake, a new server thread, a new client
connection. That was a tenth of the demo's main process. Here a connection stays open between requests
when the request's body had a length (what the application left unread is read first, so the next
request starts clean); a chunked body closes it as before, and an idle connection is closed after a
minute. Delete this the day moto's server keeps connections alive.
"""

from __future__ import annotations

import functools
import io
import socket
from typing import IO, Any, cast

from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server
from werkzeug.wsgi import LimitedStream

_uncached_modules = backends.list_of_moto_modules
_uncached_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_CACHE = "_localcloud_backend_for_host"


@functools.cache
def _cached_modules() -> frozenset[str]:
    return frozenset(_uncached_modules())


def _cached_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    # Called under the application's lock: one thread at a time fills the cache.
    cache: dict[str | None, Any] = self.__dict__.setdefault(_CACHE, {})
    if host not in cache:
        cache[host] = _uncached_backend_for_host(self, host)
    return cache[host]


def cache_backend_lookup() -> None:
    """Install the caches (idempotent)."""
    backends.list_of_moto_modules = _cached_modules
    DomainDispatcherApplication.get_backend_for_host = _cached_backend_for_host  # type: ignore[method-assign]


IDLE_CONNECTION_SECONDS = 60


class _AnsweredRequest(io.BufferedIOBase):
    """The connection's input as the handler reads it; once a kept-alive request is answered, it reads as
    ended, so that werkzeug's discarding of "what the client sent after the request" does not swallow
    the next request's line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.answered = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return b"" if self.answered else bytes(self._stream.read(size))

    def read1(self, size: int = -1) -> bytes:
        return b"" if self.answered else bytes(self._stream.read1(size))

    def readline(self, size: int | None = -1) -> bytes:
        return bytes(self._stream.readline(size))


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, keeping HTTP/1.1 connections open between requests."""

    timeout = IDLE_CONNECTION_SECONDS  # the socket's: an idle connection is closed
    _body: LimitedStream | None = None

    def setup(self) -> None:
        super().setup()
        # A response is two writes (headers, then body): with Nagle's algorithm the second waited for the
        # client's delayed ACK, 40 ms per call once connections stayed open.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._raw_input = cast(IO[bytes], self.rfile)
        self._input = _AnsweredRequest(self.rfile)
        self.rfile = self._input  # read like the buffered file it wraps

    def handle_one_request(self) -> None:
        self._body = None  # until this request's body is known
        self._input.answered = False
        super().handle_one_request()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if not environ.get("wsgi.input_terminated"):  # a body with a length, not chunked
            self._body = LimitedStream(self._raw_input, int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = self._body
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._body is not None:
            self._body.exhaust()  # the next request's line follows this body
            self._input.answered = True
            return
        super().send_header(keyword, value)


class KeepAliveMotoServer(ThreadedMotoServer):
    """moto's `ThreadedMotoServer`, serving with `KeepAliveRequestHandler`."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=KeepAliveRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def moto_server(ip_address: str, port: int = 0, *, verbose: bool = False) -> ThreadedMotoServer:
    """A moto server (not started) whose backend lookup is cached and whose connections are kept alive."""
    cache_backend_lookup()
    return KeepAliveMotoServer(ip_address=ip_address, port=port, verbose=verbose)
