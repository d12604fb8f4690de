"""What ``edsc eval`` runs: methods × SNRs × CBRs on held-out faces (validated config + condition list).

A *sample* is one held-out teacher face (``test_seeds(n, offset)[i]``) with one
instruction (the default set of ``edsc bench edit``, cycled: sample ``i`` gets
instruction ``i mod 15``). A *condition* is (method, SNR, CBR): each sample is
evaluated under every condition, giving one record per (sample, condition).

CBRs per method:

* ``editable-deepsc``: the semantic codecs with ``k`` in ``ks`` (CBR = k/(3·64·64));
  ``default_k`` (the system's codec) at every SNR, every ``ks`` at the ``sweep_snrs``.
* data-oriented baselines (``deepjscc``, ``jpeg-ldpc``, ``ideal``): ``curve_cbr``
  at every SNR, every ``cbrs`` at the ``sweep_snrs`` (for the headline's
  smallest-CBR search and the quality-vs-CBR plot).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from editable_deepsc.channel import CHANNELS, SNR_RANGE_DB
from editable_deepsc.errors import BadInput

SEMANTIC = "editable-deepsc"
"""Method name of the system under test."""
BASELINES: tuple[str, ...] = ("deepjscc", "jpeg-ldpc", "ideal")
"""Data-oriented methods ``edsc eval`` can compare against (registry names)."""
METHODS: tuple[str, ...] = (SEMANTIC, *BASELINES)
EVAL_SNR_RANGE: tuple[float, float] = SNR_RANGE_DB
"""SNRs ``edsc eval`` accepts (dB)."""


def parse_fraction(text: str, what: str = "CBR", upper: float = 1.0) -> float:
    """``"1/6"`` or ``"0.25"`` → a float in (0, ``upper``] (raises :class:`BadInput`).

    A CBR above 1 would send more channel symbols than the image has values: refused.
    """
    try:
        v = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise BadInput(f"bad {what} {text!r} (write e.g. 1/6 or 0.1667)") from None
    if not (0 < v <= upper and math.isfinite(v)):
        raise BadInput(f"{what} must be in (0, {upper:g}], got {text!r}")
    return v


def fraction_label(x: float) -> str:
    """A short label for a CBR: ``1/96`` when it is one, else 4 significant digits."""
    f = Fraction(x).limit_denominator(10000)
    if f.numerator == 1 and abs(float(f) - x) < 1e-9:
        return f"1/{f.denominator}"
    return f"{x:.4g}"


@dataclass(frozen=True)
class Condition:
    """One (method, SNR, CBR) operating point. ``cbr`` is what was asked (baselines) or k/(3HW) (semantic)."""

    method: str
    snr_db: float
    cbr: float
    k: int | None = None

    @property
    def key(self) -> str:
        tail = f"k{self.k}" if self.k is not None else f"cbr{self.cbr:.6f}"
        return f"{self.method}|{self.snr_db:g}|{tail}"


@dataclass(frozen=True)
class EvalConfig:
    """Validated settings of one evaluation run (dumped as ``config.json`` beside the results).

    Parameters
    ----------
    methods : tuple of str
        Subset of :data:`METHODS`.
    snrs : tuple of float
        SNRs in dB, within :data:`EVAL_SNR_RANGE`.
    channel : {"awgn", "rayleigh"}
    instructions : str
        ``"default"`` (the editing bench set) or a text file with one instruction per line.
    n : int
        Samples (held-out faces).
    offset : int
        First held-out seed index.
    cbrs : tuple of float
        Baseline CBR sweep (at ``sweep_snrs``).
    curve_cbr : float
        Baseline CBR at every SNR.
    ks : tuple of int or None
        Semantic codec sweep (``None``: only the system's codec).
    sweep_snrs : tuple of float
        SNRs with the full CBR/k sweep (subset of ``snrs``).
    headline_snr : float
        SNR of the headline table.
    seed : int
    grid_samples : int
        Samples whose images are saved for the image grid.
    grid_snrs : tuple of float
    proxy_input_size : int
        Input side of the EfficientNet LPIPS/FID proxies (224 = their default; other sizes are
        labelled ``@<size>px`` in the metric names).
    """

    methods: tuple[str, ...] = (SEMANTIC, "deepjscc", "jpeg-ldpc")
    snrs: tuple[float, ...] = (0.0, 3.0, 6.0, 9.0, 12.0, 15.0)
    channel: str = "awgn"
    instructions: str = "default"
    n: int = 200
    offset: int = 0
    cbrs: tuple[float, ...] = (1 / 6, 1 / 12, 1 / 24, 1 / 48)
    curve_cbr: float = 1 / 12
    ks: tuple[int, ...] | None = None
    sweep_snrs: tuple[float, ...] = (6.0,)
    headline_snr: float = 6.0
    seed: int = 0
    grid_samples: int = 4
    grid_snrs: tuple[float, ...] = (0.0, 6.0, 12.0)
    proxy_input_size: int = 224
    system: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        methods = tuple(dict.fromkeys(str(m).strip().lower() for m in self.methods))
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise BadInput(f"unknown method {bad[0] if bad else ''!r} (choose from: {', '.join(METHODS)})")
        object.__setattr__(self, "methods", methods)
        lo, hi = EVAL_SNR_RANGE
        for s in (*self.snrs, *self.sweep_snrs, self.headline_snr):
            if isinstance(s, bool) or not (isinstance(s, (int, float)) and math.isfinite(s) and lo <= s <= hi):
                raise BadInput(f"SNR {s} dB out of range [{lo:g}, {hi:g}]")
        if not self.snrs:
            raise BadInput("give at least one SNR")
        object.__setattr__(self, "snrs", tuple(float(s) for s in self.snrs))
        object.__setattr__(self, "sweep_snrs", tuple(float(s) for s in self.sweep_snrs if float(s) in self.snrs))
        if str(self.channel).lower() not in CHANNELS:
            raise BadInput(f"unknown channel {self.channel!r} (choose from: {', '.join(CHANNELS)})")
        object.__setattr__(self, "channel", str(self.channel).lower())
        if int(self.n) < 1 or int(self.offset) < 0:
            raise BadInput(f"need n >= 1 and offset >= 0, got n={self.n}, offset={self.offset}")
        cbrs = tuple(sorted({float(c) for c in self.cbrs} | {float(self.curve_cbr)}, reverse=True))
        if any(not (0 < c <= 1) for c in cbrs):
            raise BadInput(f"CBRs must be in (0, 1], got {cbrs}")
        object.__setattr__(self, "cbrs", cbrs)
        if self.ks is not None:
            ks = tuple(sorted({int(k) for k in self.ks}))
            if any(k < 1 for k in ks):
                raise BadInput(f"codec k must be >= 1, got {ks}")
            object.__setattr__(self, "ks", ks)
        if int(self.proxy_input_size) < 32 or int(self.proxy_input_size) % 32:
            raise BadInput(f"proxy_input_size must be a multiple of 32 (>= 32), got {self.proxy_input_size}")
        if int(self.grid_samples) < 0:
            raise BadInput("grid_samples must be >= 0")

    def to_json(self) -> dict:
        return asdict(self)

    def conditions(self, default_k: int, image_size: int) -> list[Condition]:
        """Every (method, SNR, CBR) of this run, in a fixed order.

        Parameters
        ----------
        default_k : int
            Symbols of the system's codec (the semantic method's default).
        image_size : int
            Side of the generator's images (CBR = k / (3·size²)).
        """
        out: list[Condition] = []
        ks = sorted(set(self.ks or ()) | {int(default_k)})
        for m in self.methods:
            for s in self.snrs:
                sweep = s in self.sweep_snrs
                if m == SEMANTIC:
                    for k in (ks if sweep else [int(default_k)]):
                        out.append(Condition(m, s, k / (3 * image_size * image_size), k))
                else:
                    for c in (self.cbrs if sweep else [float(self.curve_cbr)]):
                        out.append(Condition(m, s, float(c)))
        return out


__all__ = ["BASELINES", "Condition", "EVAL_SNR_RANGE", "EvalConfig", "METHODS", "SEMANTIC", "fraction_label",
           "parse_fraction"]
