"""The gates' inputs in S3. Clients are passed in, never created at import."""
