"""The ground floor holds the call's own errors and events; features own theirs, still under the call's tree.

Webhook, queue and server-side errors and events moved out of ``integration_kit.errors`` and
``integration_kit.events`` into their packages; ``TimeoutError`` became ``AttemptTimeout`` (the old name is a
deprecated alias for one release).
"""

from __future__ import annotations

import builtins
import warnings

import pytest

import integration_kit
from integration_kit import errors, events
from integration_kit.errors import (
    AttemptTimeout,
    ConnectionFailed,
    ConnectTimeout,
    IntegrationError,
    PermanentError,
    PoolTimeout,
    ReadTimeout,
    TransientError,
    UnsafeRequest,
    WriteTimeout,
)
from integration_kit.events import FRAME_COLUMNS, Event, Recorder
from integration_kit.queues import errors as queue_errors
from integration_kit.queues import events as queue_events
from integration_kit.server import errors as server_errors
from integration_kit.webhooks import errors as webhook_errors
from integration_kit.webhooks import events as webhook_events

#: Every moved class: its new module, and the classes of the call's tree it must still be.
MOVED_ERRORS: dict[str, tuple[object, tuple[type[BaseException], ...]]] = {
    "IdempotencyError": (server_errors, (IntegrationError,)),
    "RequestInFlight": (server_errors, (IntegrationError,)),
    "IdempotencyKeyReused": (server_errors, (IntegrationError,)),
    "WebhookError": (webhook_errors, (IntegrationError,)),
    "WebhookVerificationError": (webhook_errors, (IntegrationError, ValueError)),
    "SignatureMissing": (webhook_errors, (IntegrationError, ValueError)),
    "SignatureMalformed": (webhook_errors, (IntegrationError, ValueError)),
    "TimestampOutsideTolerance": (webhook_errors, (IntegrationError, ValueError)),
    "SignatureMismatch": (webhook_errors, (IntegrationError, ValueError)),
    "PayloadTooLarge": (webhook_errors, (IntegrationError, ValueError)),
    "UnsafeDestination": (webhook_errors, (IntegrationError, UnsafeRequest)),
    "EndpointDisabled": (webhook_errors, (IntegrationError,)),
    "QueueError": (queue_errors, (IntegrationError,)),
    "PublishNotConfirmed": (queue_errors, (IntegrationError, TransientError)),
    "BrokerUnavailable": (queue_errors, (IntegrationError, ConnectionFailed, TransientError)),
    "MessageUnroutable": (queue_errors, (IntegrationError, PermanentError)),
    "PoisonMessage": (queue_errors, (IntegrationError, PermanentError)),
}

MOVED_EVENTS = {
    "WebhookEndpointDisabled": webhook_events,
    **{name: queue_events for name in queue_events.__all__},
}


@pytest.mark.parametrize("name", sorted(MOVED_ERRORS))
def test_a_moved_error_lives_in_its_package_and_stays_in_the_call_tree(name: str) -> None:
    module, bases = MOVED_ERRORS[name]
    cls = getattr(module, name)
    assert name in module.__all__  # type: ignore[attr-defined]
    for base in bases:
        assert issubclass(cls, base), (name, base)
    assert not hasattr(errors, name), f"{name} is still on the ground floor"
    assert name not in errors.__all__


def test_the_receiver_errors_are_one_class_from_either_module() -> None:
    for name in server_errors.__all__:
        if name in webhook_errors.__all__:
            assert getattr(webhook_errors, name) is getattr(server_errors, name)


@pytest.mark.parametrize("name", sorted(MOVED_EVENTS))
def test_a_moved_event_lives_in_its_package_and_is_still_an_event(name: str) -> None:
    cls = getattr(MOVED_EVENTS[name], name)
    assert issubclass(cls, Event)
    assert not hasattr(events, name)
    assert name not in events.__all__


def test_moved_events_are_recorded_like_the_calls() -> None:
    recorder = Recorder()
    recorder(queue_events.MessageReceived(1.0, "orders", 0, queue="q", message_id="m1", attempt=1, redelivered=True))
    recorder(webhook_events.WebhookEndpointDisabled(2.0, "hooks", 0, endpoint="e", reason="gone", failing_since=None))
    assert [e.kind for e in recorder.of(Event)] == ["message_received", "webhook_endpoint_disabled"]
    frame = recorder.to_frame()
    row = frame.iloc[0]
    assert (row["queue"], row["message_id"], row["redelivered"]) == ("q", "m1", True)
    assert frame.iloc[1]["endpoint"] == "e"
    # the call's columns come first and name no feature's field; a feature's follow, in the order first seen
    assert list(frame.columns[: len(FRAME_COLUMNS)]) == list(FRAME_COLUMNS)
    assert list(frame.columns[len(FRAME_COLUMNS) :]) == [
        "queue",
        "message_id",
        "redelivered",
        "endpoint",
        "failing_since",
    ]


def test_everything_the_package_exported_is_still_there() -> None:
    for name in integration_kit.__all__:
        assert getattr(integration_kit, name) is not None


# -- TimeoutError -> AttemptTimeout ------------------------------------------------------------------------------


def test_attempt_timeout_is_the_base_of_the_phase_timeouts_and_a_builtin_timeout() -> None:
    for phase in (ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout):
        assert issubclass(phase, AttemptTimeout)
    assert issubclass(AttemptTimeout, TransientError)
    assert issubclass(AttemptTimeout, builtins.TimeoutError)
    assert "TimeoutError" not in errors.__all__


@pytest.mark.parametrize("module", [errors, integration_kit], ids=["errors", "package"])
def test_the_old_timeout_name_warns_and_is_the_new_class(module: object) -> None:
    with pytest.warns(DeprecationWarning, match="AttemptTimeout") as caught:
        old = module.TimeoutError  # type: ignore[attr-defined]
    assert old is AttemptTimeout
    assert caught[0].filename == __file__  # the warning points at the caller's line


def test_from_import_of_the_old_timeout_name_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"integration_kit\.errors\.AttemptTimeout"):
        from integration_kit.errors import TimeoutError as Old
    assert Old is AttemptTimeout


def test_except_the_old_timeout_name_still_catches_the_new_class() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(errors.TimeoutError):  # type: ignore[attr-defined]
            raise ReadTimeout("no response within 10s")
        try:
            raise ConnectTimeout("no connection within 3.05s")
        except errors.TimeoutError as exc:  # type: ignore[attr-defined]
            assert isinstance(exc, AttemptTimeout)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        errors.NoSuchError  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        integration_kit.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
