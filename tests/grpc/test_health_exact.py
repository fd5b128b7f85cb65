"""``grpc.health.check_health`` to the letter, pure (a stand-in channel, no gRPC call, no socket): it asks
``grpc.health.v1.Health/Check`` for exactly the method's service with exactly the attempt's timeout (``None``
too); ``SERVING``, and a partner without a health service (``UNIMPLEMENTED``), let the probe go (``None``); any
other status, or any other failed check, fails the probe as a never-sent ``UNAVAILABLE`` (``CONNECT_ERROR``,
status 14) whose error is a :class:`GrpcUnavailable` carrying the code, the details and the message that names
the service and what it answered."""

from __future__ import annotations

from typing import Any

import anyio
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from integration_kit.grpc import GrpcUnavailable
from integration_kit.grpc.health import check_health
from integration_kit.policies.outcome import OutcomeKind

Status = health_pb2.HealthCheckResponse


class FakeChannel:
    """Hands ``HealthStub`` a ``Check`` that records its calls and answers ``answer`` (a reply or an error)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any, Any]] = []

    def unary_unary(self, path: str, **_: Any) -> Any:
        async def call(request: Any, timeout: Any = "missing") -> Any:
            self.calls.append((path, request, timeout))
            if isinstance(self.answer, BaseException):
                raise self.answer
            return self.answer

        return call

    def unary_stream(self, path: str, **_: Any) -> Any:
        return None


def check(answer: Any, service: str = "pkg.Svc", timeout: float | None = 2.5) -> tuple[Any, FakeChannel]:
    fake = FakeChannel(answer)

    async def main() -> Any:
        return await check_health(fake, service, timeout)  # type: ignore[arg-type]

    return anyio.run(main), fake


def test_asks_check_for_the_service_with_the_timeout() -> None:
    result, fake = check(Status(status=Status.SERVING), "pkg.Svc", 2.5)
    assert result is None
    assert len(fake.calls) == 1
    path, request, timeout = fake.calls[0]
    assert path == "/grpc.health.v1.Health/Check"
    assert request == health_pb2.HealthCheckRequest(service="pkg.Svc")
    assert timeout == 2.5
    _, fake = check(Status(status=Status.SERVING), "", None)
    assert fake.calls[0][1] == health_pb2.HealthCheckRequest(service="")
    assert fake.calls[0][2] is None


def test_no_health_service_lets_the_probe_go() -> None:
    result, _ = check(grpc.aio.AioRpcError(grpc.StatusCode.UNIMPLEMENTED, details="no health"))
    assert result is None


def assert_unavailable(outcome: Any, message: str) -> None:
    assert outcome.kind is OutcomeKind.CONNECT_ERROR
    assert outcome.status == 14
    error = outcome.error
    assert type(error) is GrpcUnavailable
    assert str(error) == f"gRPC UNAVAILABLE: {message}"
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.details == message
    assert error.status == 14
    assert outcome.retry_after is None
    assert outcome.should_retry is None
    assert outcome.value is None


@pytest.mark.parametrize(
    ("status", "name"),
    [(Status.NOT_SERVING, "NOT_SERVING"), (Status.UNKNOWN, "UNKNOWN"), (Status.SERVICE_UNKNOWN, "SERVICE_UNKNOWN")],
)
def test_any_other_status_fails_the_probe(status: int, name: str) -> None:
    outcome, _ = check(Status(status=status), "pkg.Svc")
    assert_unavailable(outcome, f"health check: pkg.Svc is {name}; the probe was not sent")


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND]
)
def test_a_failed_check_fails_the_probe(code: grpc.StatusCode) -> None:
    outcome, _ = check(grpc.aio.AioRpcError(code, details="x"), "a.B")
    assert_unavailable(outcome, f"health check of a.B failed with {code.name}")


def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        check(ZeroDivisionError())
