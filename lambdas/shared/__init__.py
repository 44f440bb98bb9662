"""What every function's domain needs and none owns: settings loading, validation messages, AWS client
configuration and the per-container services. Depends on no other package of ``lambdas``."""
