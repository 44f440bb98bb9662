"""boto3 / Powertools adapters of the serving ports. Clients are passed in, never created at import."""
