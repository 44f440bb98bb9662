"""EventBridge delivery to Lambda and Step Functions targets, which moto does not make."""
