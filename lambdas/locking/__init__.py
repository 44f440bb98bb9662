"""The lease lock on an endpoint (a rollout) or a model family (a retraining), shared by both workflows."""
