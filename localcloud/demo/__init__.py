"""The stories told on the local cloud: `make demo`, `make demo-retrain`, their users and report."""
