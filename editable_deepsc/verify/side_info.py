"""Side information of a receiver-verified edit: what was asked, as a few protected bits.

The receiver of a verified edit (:mod:`editable_deepsc.verify.rounds`) checks the targets on
its own synthesis with the face nets. It cannot measure the source (it never sees the photo),
so the transmitter sends, per target, the attribute, the direction and the **goal** the
criterion compares with -- :func:`~editable_deepsc.editing.criteria.goal_value` of the target
at the source's measured value ``v0`` and the edit's strength, exactly the number the
transmitter's own check uses. The receiver then applies the same test,
:func:`~editable_deepsc.editing.criteria.meets_goal` (``more``: ``v >= goal``, ``less``:
``v <= goal``, ``set``: within the attribute's tolerance). Strength, amount and ``v0`` are
folded into the goal: the receiver could only use them to compute it.

Bit layout (one **message** per target, most significant bit first)::

    | attribute  | direction  | goal         | more |
    | ATTR_BITS  | DIR_BITS   | GOAL_BITS    | 1    |

* ``attribute``: index in :data:`~editable_deepsc.text.targets.ATTRIBUTES`,
  ``ceil(log2(len(ATTRIBUTES)))`` bits (13 attributes: 4 bits);
* ``direction``: index in :data:`DIRECTIONS` (``more``, ``less``, ``set``), 2 bits;
* ``goal``: the goal on a uniform grid of ``2**GOAL_BITS`` levels over the attribute's
  :data:`GOAL_RANGE`, rounded so that the receiver's test is never easier than the
  transmitter's (``more``: up, ``less``: down, ``set``: nearest);
* ``more``: 1 when another target's message follows (compound instructions).

So :data:`MESSAGE_BITS` = 15 bits per target. Each message is sent as one codeword of a
binary linear block code (:class:`BlockCode`: a fixed pseudo-random generator matrix, BPSK on
the real and imaginary parts of unit-power complex symbols) and decoded by soft maximum
likelihood over all ``2**MESSAGE_BITS`` codewords. Its length is chosen from the nominal SNR
(which both ends know) as the shortest whose union bound on the word error rate over AWGN is
below :data:`TARGET_WER`: at 6 dB 15 complex symbols per target (9 at 12 dB, 39 at 0 dB). The feedback bit of a round
(receiver to transmitter) is a repetition code on both parts of ``r`` complex symbols
(:func:`feedback_symbols`). Every symbol of both is counted by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.errors import BadInput
from editable_deepsc.text.targets import ATTRIBUTES

DIRECTIONS: tuple[str, ...] = ("more", "less", "set")
"""Directions of :class:`~editable_deepsc.text.targets.EditTarget`, in their code order."""


def _bits_for(n: int) -> int:
    """Bits that index ``n`` values."""
    return max(1, math.ceil(math.log2(n)))


ATTR_BITS: int = _bits_for(len(ATTRIBUTES))
DIR_BITS: int = _bits_for(len(DIRECTIONS))
GOAL_BITS: int = 8
"""Bits of a goal value (256 levels over :data:`GOAL_RANGE`: 0.004 for probabilities, 0.4 years, 0.7°)."""
MESSAGE_BITS: int = ATTR_BITS + DIR_BITS + GOAL_BITS + 1
"""Bits per target: attribute, direction, goal, "another target follows"."""

GOAL_RANGE: dict[str, tuple[float, float]] = {
    **{a: (0.0, 1.0) for a in PROBABILITY_ATTRIBUTES},
    "age": (0.0, 100.0),
    "yaw": (-90.0, 90.0),
    "pitch": (-90.0, 90.0),
    "mouth_open": (0.0, 1.5),
    "eyes_open": (0.0, 1.0),
}
"""Range of the goal grid per attribute, in the unit of the face nets (a goal outside is clipped)."""

TARGET_WER: float = 1e-4
"""Word error rate (union bound over AWGN at the nominal SNR) a target's codeword is sized for."""
MAX_SYMBOLS: int = 64
"""Longest codeword in complex symbols (at very low SNR the bound is then not reached)."""


@dataclass(frozen=True)
class Goal:
    """One target as the receiver learns it.

    Attributes
    ----------
    attribute : str
    direction : {"more", "less", "set"}
    goal : float
        The value :func:`~editable_deepsc.editing.criteria.meets_goal` compares with, in the
        attribute's unit (on the :data:`GOAL_BITS` grid once decoded).
    """

    attribute: str
    direction: str
    goal: float

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "direction": self.direction, "goal": round(float(self.goal), 6)}


# ---------------------------------------------------------------------- bits
def _level(g: Goal) -> int:
    lo, hi = GOAL_RANGE[g.attribute]
    x = (min(max(float(g.goal), lo), hi) - lo) / (hi - lo) * (2**GOAL_BITS - 1)
    x = math.ceil(x - 1e-9) if g.direction == "more" else math.floor(x + 1e-9) if g.direction == "less" else round(x)
    return int(min(max(x, 0), 2**GOAL_BITS - 1))


def quantise(g: Goal) -> Goal:
    """``g`` with its goal on the grid the receiver decodes (conservatively rounded)."""
    lo, hi = GOAL_RANGE[g.attribute]
    return Goal(g.attribute, g.direction, lo + _level(g) * (hi - lo) / (2**GOAL_BITS - 1))


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _from_bits(bits: Sequence[int]) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def goals_to_messages(goals: Sequence[Goal]) -> list[int]:
    """Goals → one :data:`MESSAGE_BITS`-bit integer per goal (layout in the module docstring)."""
    if not goals:
        raise BadInput("side information needs at least one target")
    out = []
    for i, g in enumerate(goals):
        if g.attribute not in ATTRIBUTES or g.direction not in DIRECTIONS:
            raise BadInput(f"cannot encode target {g.attribute!r} {g.direction!r}")
        bits = (_to_bits(ATTRIBUTES.index(g.attribute), ATTR_BITS) + _to_bits(DIRECTIONS.index(g.direction), DIR_BITS)
                + _to_bits(_level(g), GOAL_BITS) + [int(i + 1 < len(goals))])
        out.append(_from_bits(bits))
    return out


def message_to_goal(message: int) -> tuple[Goal | None, bool]:
    """One message → (goal, another follows); goal ``None`` when the bits name no attribute/direction."""
    bits = _to_bits(int(message), MESSAGE_BITS)
    a = _from_bits(bits[:ATTR_BITS])
    d = _from_bits(bits[ATTR_BITS:ATTR_BITS + DIR_BITS])
    level = _from_bits(bits[ATTR_BITS + DIR_BITS:-1])
    more = bool(bits[-1])
    if a >= len(ATTRIBUTES) or d >= len(DIRECTIONS):
        return None, more
    attr = ATTRIBUTES[a]
    lo, hi = GOAL_RANGE[attr]
    return Goal(attr, DIRECTIONS[d], lo + level * (hi - lo) / (2**GOAL_BITS - 1)), more


# ---------------------------------------------------------------------- the block code
def _q(x: float) -> float:
    """Gaussian tail probability Q(x)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


class BlockCode:
    """A binary linear (n, :data:`MESSAGE_BITS`) code on ``n / 2`` complex symbols, soft ML decoding.

    The generator matrix is drawn from a fixed seed (the same at both ends); codeword bit ``j``
    rides on the real (even ``j``) or imaginary (odd ``j``) part of symbol ``j // 2`` as
    ``±1/√2`` (unit symbol power).

    Parameters
    ----------
    symbols : int
        Complex symbols per codeword.
    """

    SEEDS = 4
    """Generator matrices drawn per length; the one with the best distance spectrum is kept."""

    def __init__(self, symbols: int):
        if int(symbols) < 1:
            raise BadInput(f"a codeword needs at least one symbol, got {symbols}")
        self.symbols = int(symbols)
        n = 2 * self.symbols
        msgs = torch.arange(2**MESSAGE_BITS)
        bits = torch.stack([(msgs >> (MESSAGE_BITS - 1 - i)) & 1 for i in range(MESSAGE_BITS)], 1).float()
        best, best_key = None, None
        for seed in range(self.SEEDS):  # deterministic: both ends draw the same matrices and keep the same one
            rng = torch.Generator().manual_seed(1_000_003 * n + seed)
            gen = torch.randint(0, 2, (MESSAGE_BITS, n), generator=rng).float()
            words = ((bits @ gen) % 2).long()  # float matmul: exact for these small integers
            w = words[1:].sum(1)
            d = int(w.min())
            key = (d, -int((w == d).sum()))  # largest minimum distance, then fewest nearest neighbours
            if best_key is None or key > best_key:
                best, best_key = words, key
        self.codewords = best  # (2**MESSAGE_BITS, n) int64
        self.signs = (1.0 - 2.0 * self.codewords.float())  # bit 0 -> +1, bit 1 -> -1

    @property
    def weights(self) -> torch.Tensor:
        """Hamming weight of every codeword (the code's distance spectrum), (2**MESSAGE_BITS,) int64."""
        return self.codewords.sum(1)

    def union_bound(self, snr_db: float) -> float:
        """Union bound on the word error rate over AWGN at ``snr_db``: ``Σ_c Q(√(w(c)·snr))``.

        A codeword of weight ``d`` differs from the sent one in ``d`` real parts of amplitude
        ``1/√2`` each; per part the noise variance is ``no / 2``, so the pairwise error is
        ``Q(√(d / no))``. A zero-weight codeword other than the all-zero one makes two
        messages identical: the bound is then 1.
        """
        snr = 10.0 ** (float(snr_db) / 10.0)
        w = self.weights[1:]
        if bool((w == 0).any()):
            return 1.0
        counts = torch.bincount(w)
        return float(min(1.0, sum(int(c) * _q(math.sqrt(d * snr)) for d, c in enumerate(counts.tolist()) if c)))

    def encode(self, messages: Sequence[int]) -> torch.Tensor:
        """Messages → symbols (M, symbols) complex64 of unit average power."""
        s = self.signs[torch.as_tensor(list(messages), dtype=torch.int64)] / math.sqrt(2.0)
        return torch.complex(s[:, 0::2], s[:, 1::2]).to(torch.complex64)

    def decode(self, y: torch.Tensor, h: torch.Tensor | None = None) -> list[int]:
        """Equalised symbols (M, symbols) complex64 (+ gains ``h`` of the same shape) → messages.

        Soft maximum likelihood: the codeword of largest ``Σ_j |h_j|² · s_j · y_j`` over the
        real and imaginary parts (``|h|² = 1`` for AWGN).
        """
        w = torch.ones(y.shape, dtype=torch.float32) if h is None else h.abs().pow(2).float()
        r = torch.empty(y.shape[0], 2 * self.symbols)
        r[:, 0::2], r[:, 1::2] = y.real * w, y.imag * w
        return (r @ self.signs.T).argmax(1).tolist()


@lru_cache(maxsize=64)
def _code(symbols: int) -> BlockCode:
    return BlockCode(symbols)


@lru_cache(maxsize=256)
def code_for(snr_db: float) -> BlockCode:
    """The shortest code whose union bound at nominal ``snr_db`` is below :data:`TARGET_WER`
    (from ``ceil(MESSAGE_BITS / 2)`` to :data:`MAX_SYMBOLS` complex symbols)."""
    for s in range(math.ceil(MESSAGE_BITS / 2), MAX_SYMBOLS + 1):
        code = _code(s)
        if code.union_bound(snr_db) <= TARGET_WER:
            return code
    return _code(MAX_SYMBOLS)


def side_info_symbols(n_targets: int, snr_db: float) -> int:
    """Complex symbols of the side information of ``n_targets`` targets at nominal ``snr_db``."""
    return int(n_targets) * code_for(float(snr_db)).symbols


def encode_goals(goals: Sequence[Goal], snr_db: float) -> torch.Tensor:
    """Goals → side-information symbols (1, len(goals) · symbols) complex64, unit average power."""
    code = code_for(float(snr_db))
    return code.encode(goals_to_messages(goals)).reshape(1, -1)


def decode_goals(y: torch.Tensor, snr_db: float, h: torch.Tensor | None = None) -> list[Goal]:
    """Received side information (1, M · symbols) (+ gains) → the goals, read up to the first
    message whose "more" bit is 0 (messages naming no attribute are dropped)."""
    code = code_for(float(snr_db))
    m = y.shape[1] // code.symbols
    hh = None if h is None else h.reshape(m, code.symbols)
    goals = []
    for message in code.decode(y.reshape(m, code.symbols), hh):
        goal, more = message_to_goal(message)
        if goal is not None:
            goals.append(goal)
        if not more:
            break
    return goals


# ---------------------------------------------------------------------- feedback
def feedback_symbols(snr_db: float) -> int:
    """Complex symbols of one feedback bit: the smallest ``r`` with ``Q(√(2r·snr)) ≤ TARGET_WER``
    (the bit on both parts of ``r`` symbols, soft-combined), at most :data:`MAX_SYMBOLS`."""
    snr = 10.0 ** (float(snr_db) / 10.0)
    for r in range(1, MAX_SYMBOLS + 1):
        if _q(math.sqrt(2 * r * snr)) <= TARGET_WER:
            return r
    return MAX_SYMBOLS


def encode_feedback(nack: bool, snr_db: float) -> torch.Tensor:
    """One feedback bit (``True``: not met, send a correction) → (1, r) complex64, unit power."""
    s = (-1.0 if nack else 1.0) / math.sqrt(2.0)
    r = feedback_symbols(snr_db)
    return torch.full((1, r), complex(s, s), dtype=torch.complex64)


def decode_feedback(y: torch.Tensor, h: torch.Tensor | None = None) -> bool:
    """Received feedback symbols (1, r) (+ gains) → whether a correction was asked for."""
    w = torch.ones(y.shape) if h is None else h.abs().pow(2).float()
    return bool(float(((y.real + y.imag) * w).sum()) < 0.0)


__all__ = ["ATTR_BITS", "BlockCode", "DIRECTIONS", "DIR_BITS", "GOAL_BITS", "GOAL_RANGE", "Goal", "MESSAGE_BITS",
           "TARGET_WER", "code_for", "decode_feedback", "decode_goals", "encode_feedback", "encode_goals",
           "feedback_symbols", "goals_to_messages", "message_to_goal", "quantise", "side_info_symbols"]
