"""The webhook kinds: receiving and sending webhooks (spec, simulation, live run, judge, charts)."""

__all__: list[str] = []
