"""Lambda functions run from their synthesized asset in local worker processes (moto needs Docker)."""
