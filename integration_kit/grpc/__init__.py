"""gRPC integrations: grpcio channels whose RPCs run under the call engine (the ``grpc`` extra).

- :mod:`~integration_kit.grpc.channel`: :class:`AsyncResilientChannel` (``grpc.aio``) and :class:`ResilientChannel`
  (sync), drop-in channels for generated stubs;
- :mod:`~integration_kit.grpc.config`: per-method policies from a gRPC service config (gRFC A6);
- :mod:`~integration_kit.grpc.status`: status codes as the kit's typed errors, server pushback;
- :mod:`~integration_kit.grpc.hedging`: A6 hedging; :mod:`~integration_kit.grpc.security`: TLS and credentials.
"""

from integration_kit.grpc.channel import AsyncResilientChannel, ResilientChannel
from integration_kit.grpc.config import HedgingPolicy, Idempotency, MethodConfig, ServiceConfig
from integration_kit.grpc.security import MetadataCredential
from integration_kit.grpc.status import (
    GrpcAuthError,
    GrpcPermanentError,
    GrpcRateLimited,
    GrpcRefused,
    GrpcStatus,
    GrpcStatusLost,
    GrpcTlsError,
    GrpcTransientError,
    GrpcUnavailable,
)

__all__ = [
    "AsyncResilientChannel",
    "GrpcAuthError",
    "GrpcPermanentError",
    "GrpcRateLimited",
    "GrpcRefused",
    "GrpcStatus",
    "GrpcStatusLost",
    "GrpcTlsError",
    "GrpcTransientError",
    "GrpcUnavailable",
    "HedgingPolicy",
    "Idempotency",
    "MethodConfig",
    "MetadataCredential",
    "ResilientChannel",
    "ServiceConfig",
]
