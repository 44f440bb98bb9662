"""Serving: the sticky router, feedback and their ports. No AWS at import; adapters live in `aws/`."""
