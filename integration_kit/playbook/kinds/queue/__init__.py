"""The queue kind: publishing and consuming through a broker (spec, exercise, live run, charts)."""

__all__: list[str] = []
