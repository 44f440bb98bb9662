"""Step Functions' execution status change events, which moto does not put."""
