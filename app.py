#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c env=NAME` (default dev) reads infra/environments/NAME.yaml."""

import sys

from aws_cdk import App

from infra.application import build_app
from infra.config import ConfigError


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ConfigError as error:
        print(f"mlrollout: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    app.synth()


if __name__ == "__main__":
    main()
