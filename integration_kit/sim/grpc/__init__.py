"""The flaky gRPC upstream and its test service ``inventory.v1.Inventory`` (the ``grpc`` extra).

``inventory.proto`` and the modules generated from it (``inventory_pb2``, ``inventory_pb2_grpc``; grpcio-tools
1.85.4, protobuf gencode 7.35.1) are committed; :mod:`~integration_kit.sim.grpc.upstream` serves them.
"""

__all__: list[str] = []
