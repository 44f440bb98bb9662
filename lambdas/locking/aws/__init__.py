"""The lock's DynamoDB table. The client is passed in, never created at import."""
