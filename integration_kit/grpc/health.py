"""Health-checked breaker probes: before a half-open breaker's probe goes out, ask the partner's standard health
service (``grpc.health.v1.Health/Check``) whether the method's service is ``SERVING``.

With ``health_checks=True`` on :class:`~integration_kit.grpc.channel.AsyncResilientChannel`, an attempt made while
its breaker is half-open first checks health. ``SERVING`` (or a partner without a health service:
``UNIMPLEMENTED``) lets the real RPC go; anything else fails the probe without sending it (an outcome that never
reached the method, so the breaker reopens and even a non-idempotent method risks nothing).
"""

from __future__ import annotations

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from integration_kit.grpc.status import GrpcUnavailable
from integration_kit.policies.outcome import Outcome, OutcomeKind

__all__ = ["check_health"]

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


async def check_health(channel: grpc.aio.Channel, service: str, timeout: float | None) -> Outcome | None:
    """``None`` when ``service`` may be probed (``SERVING``, or no health service); else the failed probe's outcome.

    ``timeout`` (real seconds, ``None``: none) bounds the check.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            return None
        return _unhealthy(f"health check of {service} failed with {exc.code().name}")
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return _unhealthy(f"health check: {service} is {status}; the probe was not sent")


def _unhealthy(message: str) -> Outcome:
    error = GrpcUnavailable(f"gRPC UNAVAILABLE: {message}")
    error._set_status(_UNAVAILABLE, message)
    error.status = _UNAVAILABLE.value[0]
    return Outcome(OutcomeKind.CONNECT_ERROR, status=error.status, error=error)
