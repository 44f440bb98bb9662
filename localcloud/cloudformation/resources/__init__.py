"""The resource creators of a local deployment, one module per AWS service, each with its types."""
