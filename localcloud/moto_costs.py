"""What moto computes again on every call although the answer never changes, computed once or not at all.

`moto_costs_kept()` is entered by every harness of the local cloud (`LocalCloud`, the functional tests'
deployments, the fault matrix). Each a share of the fault matrix's CPU (141 rollouts in-process) in a
py-spy profile; measured without the profiler, the two together took the module from 98.7 to 94.7
CPU-seconds:

* 6.6 %: SNS signs each message it delivers to a queue with a 2048-bit RSA key that moto generates per
  subscription (`Subscription.private_key`), so each new subscription costs a key generation. One key
  per process signs them all; each message still carries its own certificate and signature.
* 2.8 %: moto's dispatch lists the response class's methods with `inspect.getmembers` at each call to
  ask whether the action is one of them (`method_names_from_class`). The question is answered by looking
  the one name up, so a method added later (`localcloud.cloudwatch` adds PutCompositeAlarm) is found.
* Step Functions parses a definition once (`localcloud.stepfunctions.parsing`).

None of them changes an answer; the day moto keeps these itself, delete the module and its entries.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Container, Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import moto.core.responses
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.sns.models import Subscription

from localcloud.stepfunctions.parsing import parse_trees_kept


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    """The key SNS signs its messages with here, as moto generates one (2048 bits)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _subscription_key(_subscription: Subscription) -> rsa.RSAPrivateKey:
    return signing_key()


class FunctionNames(Container[str]):
    """The names of a class's functions, as `method_names_from_class` lists them, for `in` alone: the
    one name asked for is looked up, at the time it is asked."""

    def __init__(self, owner: type) -> None:
        self._owner = owner

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self._owner, name, None))


@contextmanager
def moto_costs_kept() -> Iterator[None]:
    """While open, moto reuses what it would compute again at each call (see the module's doc)."""
    with ExitStack() as stack:
        stack.enter_context(parse_trees_kept())
        stack.enter_context(mock.patch.object(Subscription, "private_key", _subscription_key))
        stack.enter_context(mock.patch.object(moto.core.responses, "method_names_from_class", FunctionNames))
        yield
