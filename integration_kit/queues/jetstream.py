"""The NATS JetStream adapter, on nats-py: PubAck confirms, ``Nats-Msg-Id`` dedup, ``nak`` with delay, a DLQ stream.

For a :class:`~integration_kit.queues.broker.Topology` named ``orders``: the work stream ``orders`` holds the
subjects ``orders.msg.>`` (a message's key becomes the last token, ``_`` when it has none); a durable pull consumer
``orders_worker`` with explicit acks and ``max_ack_pending`` = prefetch reads it; the dead-letter stream
``orders_dlq`` holds the subject ``orders.dlq``.

Every publish carries ``Nats-Msg-Id`` = the message id, so JetStream drops a repeated publish within the stream's
duplicate window (default 2 minutes): a publish retried after a lost PubAck stores the message once. A failed
attempt is ``nak``-ed with the retry delay (JetStream redelivers it after that long); the attempt is the
consumer's delivery count (``num_delivered``) less the requeues (pause, shutdown) this process made of the message,
which JetStream counts as deliveries. The history of failures before a dead letter, and the requeues, are what this
process saw (JetStream cannot rewrite a stored message's headers): after a restart, earlier requeues count.

JetStream redelivers a delivery left unsettled for ``ack_wait`` seconds, even while its handler still runs;
:meth:`JetStreamBroker.in_progress` sends the progress ack (``+WPI``) that restarts that timer, and the consumer
sends it for every handler running longer than a third of ``ack_wait``.

nats-py reports what goes wrong on a connection to its error callback, whose default logs an ERROR with a traceback
(a connection cut by the network: ``UnexpectedEOF``); this adapter's callback logs one WARNING line per error, with
the traceback at DEBUG, and the disconnection and reconnection at INFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from integration_kit.queues._client_log import report
from integration_kit.queues.broker import Delivery, Topology
from integration_kit.queues.errors import BrokerUnavailable, MessageUnroutable, PublishNotConfirmed, QueueError
from integration_kit.queues.message import FailedAttempt, Message

__all__ = ["DEFAULT_NATS_URL", "JetStreamBroker"]

logger = logging.getLogger(__name__)

#: The local server on NATS' standard port.
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
_V = TypeVar("_V")

#: How many message histories (for dead letters) and requeue counts a process keeps (oldest forgotten first).
MAX_HISTORIES = 10_000

_CONNECTION_ERRORS = (
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    ConnectionError,
    OSError,
)


class JetStreamBroker:
    """A :class:`~integration_kit.queues.broker.Broker` on NATS JetStream.

    ``prefetch`` is the consumer's ``max_ack_pending`` (default 32); ``ack_wait`` (seconds, default 30) is how
    long JetStream waits for an ack before redelivering (a crashed consumer's messages come back after it);
    ``duplicate_window`` (seconds, default 120, JetStream's own default) is how long publishes are deduplicated.
    ``storage`` is the streams' storage, ``"file"`` (durable, the default) or ``"memory"``. ``confirm_timeout``
    (seconds, default 10) bounds the wait for a PubAck when the caller gives no timeout (a dead letter, a re-drive):
    nats-py never fails a PubAck future whose reply was lost with a cut connection.

    Use nats-server 2.10 or later: in our runs nats-server 2.9.10 (Debian's package) sometimes redelivered another
    message in place of a message ``nak``-ed with a delay while other messages were being acknowledged, so the
    ``nak``-ed one was lost (file and memory storage alike; not seen with 2.15).
    """

    def __init__(
        self,
        topology: Topology,
        url: str = DEFAULT_NATS_URL,
        *,
        prefetch: int = 32,
        ack_wait: float = 30.0,
        duplicate_window: float = 120.0,
        storage: Literal["file", "memory"] = "file",
        connect_timeout: float = 5.0,
        confirm_timeout: float = 10.0,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"JetStreamBroker.prefetch must be >= 1, got {prefetch!r}")
        if not ack_wait > 0:
            raise ValueError(f"JetStreamBroker.ack_wait must be positive seconds, got {ack_wait!r}")
        if "." in topology.name:
            raise ValueError(f"a JetStream stream name has no dots, got {topology.name!r}")
        self.topology = topology
        self.prefetch = prefetch
        self.ack_wait = ack_wait
        self.duplicate_window = duplicate_window
        self.storage = api.StorageType.FILE if storage == "file" else api.StorageType.MEMORY
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._url = url
        self.stream = topology.name
        self.dead_stream = topology.dead_letter.replace(".", "_")
        self.dead_subject = topology.dead_letter
        self.durable = f"{topology.name}_worker"
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._surplus: deque[Msg] = deque()  # delivered beyond what a fetch asked for, handed out next
        self._histories: OrderedDict[str, tuple[FailedAttempt, ...]] = OrderedDict()
        self._requeued: OrderedDict[str, int] = OrderedDict()  # requeues per message id: deliveries, not attempts
        self._lock = asyncio.Lock()
        self._connecting = False  # while connecting, or between nats-py's disconnected and reconnected callbacks

    @property
    def destination(self) -> str:
        """``nats:<stream>``."""
        return f"nats:{self.stream}"

    @property
    def ack_deadline(self) -> float:
        """``ack_wait`` (seconds): the durable consumer this adapter declares redelivers what stays unsettled longer."""
        return self.ack_wait

    def __repr__(self) -> str:
        return f"<JetStreamBroker {self.destination}>"

    def subject(self, key: str) -> str:
        """The subject a message with routing key ``key`` is published on."""
        return f"{self.stream}.msg.{key or '_'}"

    # -- connection ---------------------------------------------------------------------------------------------

    async def _jetstream(self) -> JetStreamContext:
        async with self._lock:
            if self._nc is None or self._nc.is_closed or self._js is None:
                self._connecting = True
                try:
                    async with asyncio.timeout(self.connect_timeout * 2):  # nats-py retries forever otherwise
                        self._nc = await nats.connect(
                            self._url,
                            connect_timeout=self.connect_timeout,
                            allow_reconnect=True,
                            max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2,
                            error_cb=self._on_error,
                            disconnected_cb=self._on_disconnected,
                            reconnected_cb=self._on_reconnected,
                        )
                except (TimeoutError, *_CONNECTION_ERRORS) as exc:
                    raise BrokerUnavailable(
                        f"cannot connect: {type(exc).__name__}", destination=self.destination
                    ) from exc
                self._connecting = False
                self._js = self._nc.jetstream()
                self._sub = None
                self._surplus.clear()  # bound to the closed connection: JetStream redelivers them after ack_wait
            return self._js

    async def _on_error(self, error: Exception) -> None:
        # The error that dropped the connection is the event; failed attempts to connect are progress (one per
        # reconnect_time_wait while the broker is away), and a first connection that fails raises to the caller.
        if self._connecting:
            report(logger, self.destination, "NATS connection attempt", error, level=logging.INFO)
        else:
            report(logger, self.destination, "NATS connection", error)

    async def _on_disconnected(self) -> None:
        self._connecting = True
        logger.info("%s: disconnected, reconnecting", self.destination)

    async def _on_reconnected(self) -> None:
        self._connecting = False
        logger.info("%s: reconnected", self.destination)

    def _unavailable(self, exc: BaseException, operation: str) -> QueueError:
        return BrokerUnavailable(f"{operation} failed: {type(exc).__name__}", destination=self.destination)

    # -- topology -----------------------------------------------------------------------------------------------

    async def declare(self) -> None:
        """Create the work stream, its durable pull consumer and the dead-letter stream, if missing."""
        try:
            js = await self._jetstream()
            await js.add_stream(
                name=self.stream,
                subjects=[f"{self.stream}.msg.>"],
                duplicate_window=self.duplicate_window,
                storage=self.storage,
            )
            await js.add_stream(name=self.dead_stream, subjects=[self.dead_subject], storage=self.storage)
            await js.add_consumer(
                self.stream,
                api.ConsumerConfig(
                    durable_name=self.durable,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait,
                    max_ack_pending=self.prefetch,
                    max_deliver=-1,
                ),
            )
        except (*_CONNECTION_ERRORS, nats.errors.TimeoutError) as exc:
            raise self._unavailable(exc, "declare") from exc

    async def delete(self) -> None:
        """Delete both streams (and with them the consumer)."""
        js = await self._jetstream()
        for name in (self.stream, self.dead_stream):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)

    # -- publishing ---------------------------------------------------------------------------------------------

    async def publish(self, messages: Sequence[Message], *, timeout: float | None = None) -> None:
        """Publish ``messages`` (asynchronously, in order) and wait for every PubAck."""
        await self._send([(self.subject(m.key), m, m.message_id) for m in messages], timeout)

    async def _send(self, items: Sequence[tuple[str, Message, str]], timeout: float | None) -> None:
        try:
            js = await self._jetstream()
            async with asyncio.timeout(self.confirm_timeout if timeout is None else timeout):
                futures = []
                for subject, message, msg_id in items:
                    headers = message.wire_headers()
                    headers["Nats-Msg-Id"] = msg_id
                    futures.append(await js.publish_async(subject, message.body, headers=headers))
                await asyncio.gather(*futures)
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
            raise MessageUnroutable(f"no stream holds subject {items[0][0]!r}", destination=self.destination) from exc
        except nats.js.errors.APIError as exc:
            raise PublishNotConfirmed(f"JetStream refused the publish: {exc}", destination=self.destination) from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise PublishNotConfirmed(f"no PubAck within {timeout}s", destination=self.destination) from exc
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "publish") from exc

    # -- consuming ----------------------------------------------------------------------------------------------

    async def fetch(self, max_messages: int, *, timeout: float) -> list[Delivery]:
        """Pull up to ``max_messages`` from the durable consumer, waiting at most ``timeout`` seconds.

        One pull subscription serves the connection's lifetime (nats-py re-subscribes it after a reconnect).
        A cancelled fetch raises ``asyncio.CancelledError``, also when the connection was closed meanwhile (nats-py
        turns that cancellation into ``ConnectionClosedError``; passed on as such, the caller would retry).
        nats-py's ``fetch`` also hands back whatever earlier pull requests delivered after their fetch had
        timed out, so it can return more than asked: the extra messages are kept here and returned first by the
        next calls, never more than ``max_messages`` at a time (the consumer's concurrency relies on it).
        """
        if not self._surplus:
            try:
                js = await self._jetstream()
                if self._sub is None:
                    self._sub = await js.pull_subscribe_bind(self.durable, stream=self.stream)
                self._surplus.extend(await self._sub.fetch(batch=max_messages, timeout=timeout))
            except (TimeoutError, nats.errors.TimeoutError):  # no message in time (builtin: an OSError, so first)
                if self._nc is None or not self._nc.is_connected:
                    raise self._unavailable(ConnectionError("not connected"), "consume") from None
                return []
            except (*_CONNECTION_ERRORS, nats.js.errors.APIError) as exc:  # APIError: a status such as 409
                _reraise_cancellation(exc)
                raise self._unavailable(exc, "consume") from exc
        surplus = self._surplus
        return [self._delivery(surplus.popleft()) for _ in range(min(max_messages, len(surplus)))]

    def _delivery(self, raw: Msg) -> Delivery:
        # The ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>. Read
        # the count from it; nats-py's metadata (a datetime per message) only for its other forms (with a domain).
        tokens = raw.reply.split(".")
        delivered = int(tokens[4]) if len(tokens) == 9 else raw.metadata.num_delivered
        message = Message.from_wire(raw.data, raw.headers or {}, key=raw.subject.rsplit(".", 1)[-1], message_id=None)
        attempt = delivered - self._requeued.get(message.message_id, 0)  # a requeue uses no attempt
        if attempt > 1 or message.attempt > 1:
            message = replace(
                message,
                attempt=max(message.attempt, attempt),
                history=self._histories.get(message.message_id, message.history),
            )
        return Delivery(message, raw, redelivered=delivered > 1)

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge the delivery."""
        self._forget(delivery.message.message_id)
        await self._settle(delivery, None)

    def _forget(self, message_id: str) -> None:
        self._histories.pop(message_id, None)
        self._requeued.pop(message_id, None)

    async def requeue(self, delivery: Delivery) -> None:
        """``nak`` without delay: JetStream redelivers it at once. JetStream counts it as a delivery; this adapter
        counts it off the attempt of the message's later deliveries (in this process's memory)."""
        message_id = delivery.message.message_id
        _remember(self._requeued, message_id, self._requeued.get(message_id, 0) + 1)
        await self._settle(delivery, 0.0)

    async def retry(self, delivery: Delivery, *, delay: float, reason: str, now: float) -> None:
        """``nak`` with ``delay``: JetStream redelivers it after that many seconds."""
        failed = delivery.message.failed(reason, now)
        _remember(self._histories, failed.message_id, failed.history)
        await self._settle(delivery, delay)

    async def in_progress(self, delivery: Delivery) -> None:
        """Send the progress ack (``+WPI``): JetStream restarts the delivery's ``ack_wait`` timer.

        A delivery already settled is left alone (nats-py would send the progress ack all the same).
        Raises :class:`~integration_kit.queues.errors.BrokerUnavailable` when the connection is closed or broken.
        """
        raw = _msg(delivery)
        if raw._ackd:  # nats-py's mark for a settled message (ack, nak, term); its in_progress does not check it
            return
        try:
            await raw.in_progress()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "in_progress") from exc

    async def _settle(self, delivery: Delivery, nak_delay: float | None) -> None:
        raw = _msg(delivery)
        try:
            if nak_delay is None:
                await raw.ack()
            else:
                await raw.nak(delay=nak_delay or None)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "ack" if nak_delay is None else "nak") from exc

    async def dead_letter(self, delivery: Delivery, *, reason: str, now: float) -> None:
        """Publish the dead letter to the DLQ stream (PubAck), then acknowledge the delivery."""
        dead = delivery.message.dead(reason, now)
        await self._send([(self.dead_subject, dead, f"{dead.message_id}:dead")], None)
        await self.ack(delivery)

    # -- dead letters -------------------------------------------------------------------------------------------

    async def _dead_records(self, limit: int) -> list[tuple[int, Message]]:
        js = await self._jetstream()
        try:
            info = await js.stream_info(self.dead_stream)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "dead_letters") from exc
        records: list[tuple[int, Message]] = []
        seq = info.state.first_seq
        while len(records) < limit and seq <= info.state.last_seq and info.state.messages:
            try:
                raw = await js.get_msg(self.dead_stream, seq)
            except nats.js.errors.NotFoundError:
                seq += 1
                continue
            headers = {str(k): str(v) for k, v in (raw.headers or {}).items()}
            records.append((seq, Message.from_wire(raw.data or b"", headers)))
            seq += 1
        return records

    async def dead_letters(self, limit: int = 100) -> list[Message]:
        """Read up to ``limit`` dead letters from the DLQ stream (left in place)."""
        return [message for _, message in await self._dead_records(limit)]

    async def redrive(self, limit: int = 100) -> int:
        """Publish up to ``limit`` dead letters back to the work stream as attempt 1, then delete them."""
        js = await self._jetstream()
        moved = 0
        for seq, message in await self._dead_records(limit):
            again = message.redriven()
            await self._send([(self.subject(again.key), again, f"{again.message_id}:redrive:{seq}")], None)
            await js.delete_msg(self.dead_stream, seq)
            moved += 1
        return moved

    async def close(self) -> None:
        """Close the connection (unacknowledged deliveries come back after ``ack_wait``)."""
        nc = self._nc
        self._nc = self._js = self._sub = None
        self._surplus.clear()
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except _CONNECTION_ERRORS:
                logger.debug("closing a broken NATS connection", exc_info=True)


def _msg(delivery: Delivery) -> Msg:
    """The nats-py message behind ``delivery``; ``TypeError`` for another adapter's delivery."""
    raw = delivery.raw
    if not isinstance(raw, Msg):
        raise TypeError(f"not a JetStream delivery: {delivery!r}")
    return raw


def _remember(memory: OrderedDict[str, _V], message_id: str, value: _V) -> None:
    """Keep ``value`` for ``message_id``, forgetting the oldest entries beyond :data:`MAX_HISTORIES`."""
    memory[message_id] = value
    memory.move_to_end(message_id)
    while len(memory) > MAX_HISTORIES:
        memory.popitem(last=False)


def _reraise_cancellation(exc: BaseException) -> None:
    """Raise ``asyncio.CancelledError`` if the current task is being cancelled.

    nats-py's ``Subscription.next_msg`` (under a pull ``fetch``) answers a cancellation with
    ``ConnectionClosedError`` when the connection was closed meanwhile (a consumer stopped as its connection drops),
    so the cancellation would be lost and the cancelled consumer would reconnect and go on fetching.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc
