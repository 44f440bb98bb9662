"""The HTTP API (API Gateway v2) of a template, served on loopback: IAM authorization, payload format 2.0."""
