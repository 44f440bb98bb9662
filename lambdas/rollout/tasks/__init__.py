"""The rollout workflow's tasks: each takes the state and the services, makes its calls, returns the next
state. The handlers in ``lambdas/handlers/`` parse the event, run one and answer."""
