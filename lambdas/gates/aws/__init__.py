"""The gates' AWS adapters: their inputs in S3, and the golden inputs sent to the deployed candidate.
Clients are passed in, never created at import."""
