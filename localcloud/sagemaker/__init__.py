"""SageMaker's UpdateEndpoint, registry events, InvokeEndpoint and jobs, as moto lacks them."""
