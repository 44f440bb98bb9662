"""A synthesized stack read from cdk.out and deployed into moto through the services' own APIs."""
