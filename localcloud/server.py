"""moto's server on loopback, with its per-request backend lookup cached.

For every request moto's `DomainDispatcherApplication` finds the backend under one global lock, and the
lookup lists moto's package directory (`os.listdir` and an `isdir` per entry, twice for most requests)
before matching the host against every service's URL patterns. Under the demo's traffic the server's
threads queued on that lock. The answer depends on the host alone and the package does not change while
it runs, so both are cached. Delete this the day moto caches them itself.
"""

from __future__ import annotations

import functools
from typing import Any

from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import ThreadedMotoServer

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


def moto_server(ip_address: str, port: int = 0, *, verbose: bool = False) -> ThreadedMotoServer:
    """A `ThreadedMotoServer` (not started) whose backend lookup is cached."""
    cache_backend_lookup()
    return ThreadedMotoServer(ip_address=ip_address, port=port, verbose=verbose)
