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

Speed: Python's 64-bit integer arithmetic allocates at every step, so one output costs about a dozen integer
objects. The simulator asks for the first attempts of calls 1, 2, 3, ... in turn, so :meth:`KeyedRandom.rekey_request`
prepares the first outputs of the next :data:`BLOCK` first attempts at once, with each 64-bit lane 128 bits apart in
one big integer (a lane times a 64-bit constant cannot spill into the next lane; masks keep the lanes apart after
each shift). The values are the very same; only the work is shared.
"""

from __future__ import annotations

import math
import random
import sys
from array import array

__all__ = ["BLOCK", "KeyedRandom", "arrival_key", "mix64", "request_key"]

#: How many first attempts :meth:`KeyedRandom.rekey_request` prepares at once (calls ``n .. n + BLOCK - 1``).
BLOCK = 512

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


def _lane_constant(value: int) -> int:
    """``value`` (< 2**64) in every lane of a :data:`BLOCK`-lane packed integer."""
    return int.from_bytes(value.to_bytes(8, "little") * 2 * BLOCK, "little") & _LANES


_LANES = int.from_bytes((b"\xff" * 8 + b"\x00" * 8) * BLOCK, "little")  # the low 64 bits of every 128-bit lane
_GOLDEN_LANES = _lane_constant(_GOLDEN)


def _mix_lanes(z: int) -> int:
    """:func:`mix64` on every lane of a packed integer (lanes hold values < 2**64; a product by a 64-bit
    constant stays in its lane)."""
    z = ((z ^ (z >> 30)) & _LANES) * _M1 & _LANES
    z = ((z ^ (z >> 27)) & _LANES) * _M2 & _LANES
    return (z ^ (z >> 31)) & _LANES


def _pack(values: list[int]) -> int:
    """:data:`BLOCK` values < 2**64 as the lanes of one integer (lane ``i`` at bit ``128 * i``)."""
    words = array("Q", bytes(16 * BLOCK))
    words[::2] = array("Q", values)
    if sys.byteorder != "little":  # pragma: no cover - the lanes are read back little-endian
        words.byteswap()
    return int.from_bytes(words.tobytes(), "little")


def _unpack(packed: int) -> list[int]:
    """The lanes of ``packed`` (see :func:`_pack`)."""
    words = array("Q", packed.to_bytes(16 * BLOCK, "little"))
    if sys.byteorder != "little":  # pragma: no cover
        words.byteswap()
    return words[::2].tolist()


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
        self._ahead: list[int] = []  # outputs of the current key computed in advance, the next one last
        self._first_call = 0  # the call whose first attempt is _prepared[0]
        self._prepared: list[tuple[int, int, int]] = []  # per first attempt: (state after 2 outputs, output 2, 1)
        super().__init__(seed)

    def seed(self, a: object = None, version: int = 2) -> None:
        """Set the seed (an ``int``; ``None`` is 0); the key is reset to 0."""
        if a is not None and (isinstance(a, bool) or not isinstance(a, int)):
            raise TypeError(f"KeyedRandom: the seed must be an int, got {type(a).__name__}")
        super().seed(a, version)
        self._base = mix64((a or 0) * _GOLDEN + 1)
        self._prepared = []
        self.rekey(0)

    def rekey(self, key: int) -> None:
        """Start the stream of ``key`` (see :func:`request_key`): later draws depend on ``(seed, key)`` only.

        The stream's counter starts at ``base XOR (key + 1) * M2`` (``base`` is the mixed seed); every output
        passes through the SplitMix64 finaliser, so neighbouring keys give unrelated values."""
        self._state = self._base ^ ((key + 1) * _M2 & _MASK)
        self._ahead = []
        self.gauss_next = None  # gauss() keeps its second value; it belongs to the previous key

    def rekey_request(self, call: int, attempt: int) -> None:
        """``rekey(request_key(call, attempt))`` in one step (the simulator's hot path).

        A first attempt takes its first two outputs from a block prepared in advance: a call past the block
        prepares the next :data:`BLOCK` calls from it; a call before the block is computed as any retry is."""
        self.gauss_next = None
        if attempt == 1:
            index = call - self._first_call
            if index >= len(self._prepared):
                self._prepare(call)
                index = 0
            if index >= 0:
                self._state, second, first = self._prepared[index]
                self._ahead = [second, first]
                return
        self._state = self._base ^ (((((call << 16) | (attempt & 0xFFFF)) << 1) + 1) * _M2 & _MASK)
        self._ahead = []

    def _prepare(self, call: int) -> None:
        """Compute the first two outputs of the first attempts of calls ``call .. call + BLOCK - 1`` at once."""
        keys = _pack([((c << 17) + 3) & _MASK for c in range(call, call + BLOCK)])  # request_key(c, 1) + 1
        base = _lane_constant(self._base)
        first = (base ^ (keys * _M2 & _LANES)) + _GOLDEN_LANES & _LANES
        second = first + _GOLDEN_LANES & _LANES
        outputs = _unpack(second), _unpack(_mix_lanes(second)), _unpack(_mix_lanes(first))
        self._prepared = list(zip(*outputs, strict=True))
        self._first_call = call

    def random(self) -> float:
        """The next value in [0, 1) of the current key's stream (53 random bits)."""
        ahead = self._ahead
        if ahead:
            return (ahead.pop() >> 11) * _TO_UNIT
        self._state = state = (self._state + _GOLDEN) & _MASK
        z = ((state ^ (state >> 30)) * _M1) & _MASK
        z = ((z ^ (z >> 27)) * _M2) & _MASK
        return ((z ^ (z >> 31)) >> 11) * _TO_UNIT

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """A normal deviate from one step of the stream (Box-Muller on its two 32-bit halves; no value is kept
        for the next call, unlike ``random.Random.gauss``)."""
        ahead = self._ahead
        if ahead:
            z = ahead.pop()
        else:
            self._state = state = (self._state + _GOLDEN) & _MASK
            z = ((state ^ (state >> 30)) * _M1) & _MASK
            z = ((z ^ (z >> 27)) * _M2) & _MASK
            z ^= z >> 31
        u1 = ((z >> 32) + 1) * _TO_UNIT32  # in (0, 1]: the logarithm is finite
        u2 = (z & 0xFFFFFFFF) * _TO_UNIT32
        return mu + sigma * _sqrt(-2.0 * _log(u1)) * _cos(_TWO_PI * u2)
