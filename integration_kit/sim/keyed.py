"""Random draws keyed by a request's index, so two players of one scenario draw the same fate for request *n*.

The simulator and the live upstream (:mod:`integration_kit.sim.upstream`) both number the requests the partner
receives, 0, 1, 2, ... in the order they arrive, and draw request *n*'s fault and latency from a stream keyed by
``(seed, n)`` alone. A request that arrives a little earlier or later in one of them, or an extra request in one,
then no longer shifts every later draw (as one shared ``random.Random`` consumed in arrival order did), and the
two runs draw the same outcome for the same request.

The stream is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
the generator ``java.util.SplittableRandom`` uses): the state steps by the golden-ratio increment and each output
is the state passed through the finaliser. :class:`KeyedRandom` is a :class:`random.Random` whose ``random()`` is
that stream, so ``gauss()``, ``uniform()`` and the other methods that build on ``random()`` work unchanged.
"""

from __future__ import annotations

import random

__all__ = ["KeyedRandom", "mix64"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 1.0 / (1 << 53)


def mix64(value: int) -> int:
    """The SplitMix64 finaliser: a bijection on 64-bit integers that spreads every input bit over the output."""
    z = value & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


class KeyedRandom(random.Random):
    """A ``random.Random`` whose draws depend only on the seed and the key given to :meth:`rekey`.

    ``KeyedRandom(seed)`` then ``rekey(n)`` before request *n*'s draws: the values that follow are a function of
    ``(seed, n)`` and of how many were drawn since. Integer seeds only (strings are hashed with a salt per process).
    Not for secrets. ``getrandbits`` and the methods built on it (``randrange``, ``choice``) still use the
    inherited Mersenne Twister and are not keyed.
    """

    def __init__(self, seed: int = 0) -> None:
        self._base = 0
        self._state = 0
        super().__init__(seed)

    def seed(self, a: object = None, version: int = 2) -> None:
        """Set the seed (an ``int``; ``None`` is 0); the key is reset to 0."""
        if a is not None and (isinstance(a, bool) or not isinstance(a, int)):
            raise TypeError(f"KeyedRandom: the seed must be an int, got {type(a).__name__}")
        super().seed(a, version)
        self._base = mix64((a or 0) * _GOLDEN + 1)
        self.rekey(0)

    def rekey(self, key: int) -> None:
        """Start the stream of ``key`` (a request's index): later draws depend on ``(seed, key)`` only."""
        self._state = mix64(self._base ^ ((key + 1) * _M2 & _MASK))
        self.gauss_next = None  # gauss() keeps its second value; it belongs to the previous key

    def random(self) -> float:
        """The next value in [0, 1) of the current key's stream (53 random bits)."""
        self._state = state = (self._state + _GOLDEN) & _MASK
        z = ((state ^ (state >> 30)) * _M1) & _MASK
        z = ((z ^ (z >> 27)) * _M2) & _MASK
        return ((z ^ (z >> 31)) >> 11) * _TO_UNIT
