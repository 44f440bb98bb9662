"""AppConfig environments, strategies, deployments, extension associations, AppConfigData (not in moto)."""
