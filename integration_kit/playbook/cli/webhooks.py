"""``integration-kit webhooks ...``: operate a webhook inbox from the command line.

- ``webhooks dead-letters --inbox PATH``: list the dead events (id, arrival, claims, last error);
- ``webhooks replay --inbox PATH [--id ID ...] [--handler module:function]``: send dead letters back. With
  ``--handler`` they are processed here and now, through the handler under the engine's retry; without it they are
  made pending again, for the service's own processor to take.
"""

from __future__ import annotations

import argparse
import importlib
from datetime import UTC, datetime
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.args import Command
from integration_kit.server.inbox import SQLiteInbox
from integration_kit.server.webhook_processor import Handler, WebhookProcessor

__all__ = ["COMMANDS", "add_webhook_commands", "webhook_command"]


def add_webhook_commands(sub: Any) -> None:
    """Add the ``webhooks`` command and its subcommands to the CLI's subparsers."""
    _arguments(sub.add_parser("webhooks", help=_HELP))


_HELP = "operate a webhook inbox: list and replay dead letters"


def _arguments(webhooks: argparse.ArgumentParser) -> None:
    actions = webhooks.add_subparsers(dest="webhooks_command", required=True)
    text = "list the dead events of an inbox"
    listing = actions.add_parser("dead-letters", help=text, description=text)
    text = "send dead letters back through the handler"
    replay = actions.add_parser("replay", help=text, description=text)
    for parser in (listing, replay):
        parser.add_argument("--inbox", required=True, help="the SQLite inbox file")
        parser.add_argument("--namespace", default="", help="the inbox namespace (default: none)")
    replay.add_argument("--id", action="append", dest="ids", help="replay only this event id (repeatable)")
    replay.add_argument("--handler", help="module:function to process them now (default: leave them pending)")


def webhook_command(args: argparse.Namespace) -> int:
    """Run a ``webhooks`` subcommand; return the exit code."""
    inbox = SQLiteInbox(args.inbox, namespace=args.namespace)
    try:
        if args.webhooks_command == "dead-letters":
            dead = inbox.dead_letters(limit=10_000)
            for event in dead:
                when = datetime.fromtimestamp(event.received_at, tz=UTC).isoformat(timespec="seconds")
                print(f"{event.id}  received {when}  claims {event.claims}  {event.last_error or ''}")
            print(f"{len(dead)} dead letters")
            return 0
        if args.handler:
            processor = WebhookProcessor(inbox, _import_handler(args.handler))
            moved = processor.replay(args.ids)
            print(f"replayed {moved} dead letters: {processor.processed} processed, {processor.dead} dead again")
            return 1 if processor.dead else 0
        moved = inbox.replay(args.ids)
        print(f"{moved} dead letters are pending again")
        return 0
    finally:
        inbox.close()


def _import_handler(target: str) -> Handler:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--handler must be module:function, got {target!r}")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"--handler {target!r} cannot be imported: {exc}") from None
    if not callable(handler):
        raise ConfigurationError(f"--handler {target!r} is not callable")
    return handler  # type: ignore[no-any-return]


#: The commands of this module, for the CLI's table.
COMMANDS = (Command("webhooks", _HELP, _arguments, webhook_command),)
