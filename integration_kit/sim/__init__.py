"""Simulation: fault scenarios, the virtual-time simulator, the live flaky upstream and fault transports.

``scenarios`` loads and plays fault scenarios; ``simulate`` drives the call engine in virtual time;
``upstream`` plays a scenario over real sockets (uvicorn on 127.0.0.1); ``testing`` plays it in-process as an
httpx transport. Nothing here imports the HTTP client layer: the sim-vs-live check lives in the playbook.
"""

__all__: list[str] = []
