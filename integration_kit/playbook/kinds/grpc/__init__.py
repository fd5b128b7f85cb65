"""The gRPC kind (``kind = "grpc"``): a partner's gRPC service called through the resilient channel."""

__all__: list[str] = []
