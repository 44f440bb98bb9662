"""boto3 adapters of the rollout domain. Clients are passed in, never created at import."""
