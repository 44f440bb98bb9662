"""CloudWatch alarm evaluation, the alarm APIs moto lacks, metric math and embedded metric format."""
