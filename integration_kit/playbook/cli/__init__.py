"""The integration-kit command line."""

from integration_kit.playbook.cli.app import main

__all__ = ["main"]
