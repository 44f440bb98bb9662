"""What every tier shares: one botocore data loader per test process, and no deadline on properties.

moto's `mock_aws` gives each test a fresh default boto3 session, and each new session parsed the service
models' JSON again (SageMaker's alone is megabytes): a third of the CPU of a fault-matrix cell. Sessions
of one process now share the loader, and so its cache, as the clients of one session always do.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session
from hypothesis import settings

_create_loader = botocore.session.create_loader


@functools.cache
def _shared_loader(search_path: str | None = None) -> botocore.loaders.Loader:
    return _create_loader(search_path)


botocore.session.create_loader = _shared_loader


# No test is timed (speed is the benchmarks' business, `make bench`): Hypothesis' default 200 ms deadline per
# example failed a property beside the demo stories at 330 ms.
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")
