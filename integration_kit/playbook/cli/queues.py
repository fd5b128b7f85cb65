"""``integration-kit queues dead-letters list|redrive``: look at a dead-letter queue and send its messages back.

::

    integration-kit queues dead-letters list    --broker rabbitmq --queue orders [--limit 20] [--json]
    integration-kit queues dead-letters redrive --broker jetstream --queue orders --url nats://127.0.0.1:4222

``--queue`` is the work queue (RabbitMQ) or stream (JetStream); its dead letters are in ``<queue>.dlq``. The
broker URL defaults to ``INTEGRATION_KIT_AMQP_URL`` (or the local RabbitMQ) and the local NATS server; it is never
printed (it may hold credentials). A re-driven message goes back to the work queue as attempt 1, with its id and
attempt history kept, so a consumer's inbox still suppresses it if it was processed after all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.args import Command
from integration_kit.queues.broker import Broker, Topology
from integration_kit.queues.errors import QueueError
from integration_kit.queues.message import Message

__all__ = ["COMMANDS", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``dead-letters list|redrive`` sub-commands to ``parser`` (the ``queues`` command)."""
    sub = parser.add_subparsers(dest="queues_command", required=True)
    text = "list or re-drive the dead letters of a queue or stream"
    dead = sub.add_parser("dead-letters", help=text, description=text)
    action = dead.add_subparsers(dest="dead_letters_command", required=True)
    for name, text in (("list", "print the oldest dead letters"), ("redrive", "publish them back to the queue")):
        cmd = action.add_parser(name, help=text, description=text)
        cmd.add_argument("--broker", choices=("rabbitmq", "jetstream"), required=True, help="the broker holding it")
        cmd.add_argument("--queue", required=True, help="the work queue (RabbitMQ) or stream (JetStream)")
        cmd.add_argument("--url", help="the broker URL (default: INTEGRATION_KIT_AMQP_URL / the local server)")
        cmd.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
        if name == "list":
            cmd.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int:
    """Run a ``queues`` command; return the exit status (2 when the broker cannot be reached)."""
    if args.limit < 1:
        raise ConfigurationError(f"--limit must be >= 1, got {args.limit}")
    broker = _broker(args.broker, args.queue, args.url)
    try:
        if args.dead_letters_command == "list":
            letters = asyncio.run(_list(broker, args.limit))
            for letter in letters:
                print(json.dumps(describe(letter)) if args.json else format_letter(letter))
            if not args.json:
                print(f"{len(letters)} dead letter(s) in {broker.topology.dead_letter}")
        else:
            moved = asyncio.run(_redrive(broker, args.limit))
            print(f"re-drove {moved} dead letter(s) from {broker.topology.dead_letter} to {broker.topology.name}")
    except QueueError as exc:
        print(f"integration-kit: {exc}", file=sys.stderr)
        return 2
    return 0


def describe(letter: Message) -> dict[str, object]:
    """A dead letter as plain data: id, key, attempts, reason, history and the body's size (never the body)."""
    return {
        "message_id": letter.message_id,
        "key": letter.key,
        "attempts": len(letter.history),
        "reason": letter.dead_reason,
        "history": [{"attempt": h.attempt, "reason": h.reason, "at": h.at} for h in letter.history],
        "body_bytes": len(letter.body),
    }


def format_letter(letter: Message) -> str:
    """One line: id, key, attempts and reason."""
    return f"{letter.message_id}  key={letter.key or '-'}  attempts={len(letter.history)}  {letter.dead_reason}"


def _broker(kind: str, queue: str, url: str | None) -> Broker:
    try:
        topology = Topology(queue)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    if kind == "rabbitmq":
        from integration_kit.queues.rabbitmq import RabbitMQBroker  # aio-pika: the queues extra

        return RabbitMQBroker(topology, url)
    from integration_kit.queues.jetstream import DEFAULT_NATS_URL, JetStreamBroker  # nats-py: the queues extra

    return JetStreamBroker(topology, url or DEFAULT_NATS_URL)


async def _list(broker: Broker, limit: int) -> list[Message]:
    try:
        return await broker.dead_letters(limit)
    finally:
        await broker.close()


async def _redrive(broker: Broker, limit: int) -> int:
    try:
        return await broker.redrive(limit)
    finally:
        await broker.close()


#: The commands of this module, for the CLI's table.
COMMANDS = (Command("queues", "message queues: list and re-drive dead letters", add_arguments, run),)
