"""Retraining: new data in, a registered model package out, handed to the rollout workflow."""
