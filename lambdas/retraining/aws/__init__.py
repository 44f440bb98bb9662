"""The retraining tasks' boto3 adapters: SageMaker jobs and the registry, S3 reads, the lock table."""
