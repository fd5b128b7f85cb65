"""Research tools: the scoreboard, sim-vs-live fidelity, overload and default targets.

Used by bench/, the guides and the tests; nothing in the shipped package imports them, and the wheel leaves them out.
"""

__all__: list[str] = []
