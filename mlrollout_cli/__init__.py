"""The `mlrollout` command: watch, start, abort and steer rollouts of a deployed environment."""
