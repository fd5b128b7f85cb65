"""Random draws keyed by the request, so two players of one scenario draw the same fate for the same request.

A request is named by its logical call's number (1, 2, ... in the order calls start) and its attempt number
(:func:`request_key`). The simulator draws each attempt's fault and latency from a stream keyed by
``(seed, request_key(call, attempt))`` alone; the live upstream (:mod:`integration_kit.sim.upstream`) does the same
when the client names the call in an ``X-Fault-Key`` header (the fidelity check does), and otherwise keys by the
order of arrival (:func:`arrival_key`). A request that arrives a little earlier or later in one of them, or an extra
request in one, then no longer shifts every later draw (as one shared ``random.Random`` consumed in arrival order
did), and the two runs draw the same outcome for the same request.

The stream is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
the generator ``java.util.SplittableRandom`` uses): the state steps by the golden-ratio increment and each output
is the state passed through the finaliser. :class:`KeyedRandom` is a :class:`random.Random` whose ``random()`` is
that stream, so ``gauss()``, ``uniform()`` and the other methods that build on ``random()`` work unchanged.
"""

from __future__ import annotations

import math
import random

__all__ = ["KeyedRandom", "arrival_key", "mix64", "request_key"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 1.0 / (1 << 53)
_TO_UNIT32 = 1.0 / (1 << 32)
_TWO_PI = 2.0 * math.pi
_sqrt, _log, _cos = math.sqrt, math.log, math.cos


def mix64(value: int) -> int:
    """The SplitMix64 finaliser: a bijection on 64-bit integers that spreads every input bit over the output."""
    z = value & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def request_key(call: int, attempt: int) -> int:
    """The key of attempt ``attempt`` (1-based) of logical call number ``call`` (even keys)."""
    return ((call << 16) | (attempt & 0xFFFF)) << 1


def arrival_key(index: int) -> int:
    """The key of the ``index``-th request to arrive (0-based), for a player that cannot name the call (odd keys)."""
    return (index << 1) | 1


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
        """Start the stream of ``key`` (see :func:`request_key`): later draws depend on ``(seed, key)`` only.

        The stream's counter starts at ``base XOR (key + 1) * M2`` (``base`` is the mixed seed); every output
        passes through the SplitMix64 finaliser, so neighbouring keys give unrelated values."""
        self._state = self._base ^ ((key + 1) * _M2 & _MASK)
        self.gauss_next = None  # gauss() keeps its second value; it belongs to the previous key

    def rekey_request(self, call: int, attempt: int) -> None:
        """``rekey(request_key(call, attempt))`` in one step (the simulator's hot path)."""
        self._state = self._base ^ (((((call << 16) | (attempt & 0xFFFF)) << 1) + 1) * _M2 & _MASK)
        self.gauss_next = None

    def random(self) -> float:
        """The next value in [0, 1) of the current key's stream (53 random bits)."""
        self._state = state = (self._state + _GOLDEN) & _MASK
        z = ((state ^ (state >> 30)) * _M1) & _MASK
        z = ((z ^ (z >> 27)) * _M2) & _MASK
        return ((z ^ (z >> 31)) >> 11) * _TO_UNIT

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """A normal deviate from one step of the stream (Box-Muller on its two 32-bit halves; no value is kept
        for the next call, unlike ``random.Random.gauss``)."""
        self._state = state = (self._state + _GOLDEN) & _MASK
        z = ((state ^ (state >> 30)) * _M1) & _MASK
        z = ((z ^ (z >> 27)) * _M2) & _MASK
        z ^= z >> 31
        u1 = ((z >> 32) + 1) * _TO_UNIT32  # in (0, 1]: the logarithm is finite
        u2 = (z & 0xFFFFFFFF) * _TO_UNIT32
        return mu + sigma * _sqrt(-2.0 * _log(u1)) * _cos(_TWO_PI * u2)
