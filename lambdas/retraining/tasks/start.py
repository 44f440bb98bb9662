"""Start a retraining: the execution's input becomes the state and the family's lock is taken.

Input: ``{"model_family": ..., "trigger": {"kind": ..., "detail": {...}}}`` with ``execution_id`` added
by the state machine. Another run holding the family is no failure: the state says ``lock.taken`` false
and the state machine ends at "Already retraining". A bad input or an unknown family changes nothing.
"""

from __future__ import annotations

from lambdas.locking.lock import EndpointLocked
from lambdas.retraining.aws.wiring import RetrainingServices, lock_key
from lambdas.retraining.state import LockStatus, RetrainingInput, RetrainingState, run_id_for


def start(given: RetrainingInput, services: RetrainingServices) -> RetrainingState:
    services.settings.family(given.model_family)  # an unknown family is refused before anything changes
    key = lock_key(given.model_family)
    try:
        lease = services.lock.acquire(key, given.execution_id)
        lock = LockStatus(taken=True, key=key, holder=lease.holder)
    except EndpointLocked as locked:
        lock = LockStatus(taken=False, key=key, holder=locked.lease.holder)
    return RetrainingState(
        model_family=given.model_family,
        trigger=given.trigger,
        execution_id=given.execution_id,
        run_id=run_id_for(given.execution_id),
        lock=lock,
    )
