"""Modulation-and-coding-scheme (MCS) table: measured 5G-LDPC BLER and the choice of MCS for an SNR.

The table (``channel/mcs_bler.json``) holds, for every candidate MCS in
:data:`MCS_CANDIDATES` and each channel (AWGN; Rayleigh with one gain per
code block, known at the receiver), the block error rate of a 5G-LDPC code
block with :data:`TABLE_K` information bits over a grid of SNRs. It is
written by ``scripts/measure_mcs.py`` (which calls :func:`measure_table`)
and read by :func:`select_mcs`:

    the MCS with the highest spectral efficiency ``m·r`` (information bits per
    channel use) whose BLER at the SNR is below ``target_bler`` (10%).

For Rayleigh, the BLER used is the AWGN measurement averaged over the
fading distribution (exact for a gain per block known at the receiver, see
:func:`rayleigh_from_awgn`); a direct Monte-Carlo measurement is stored next to
it (``bler_mc``) as a check.

The SNR is looked up conservatively: the largest grid point not above it.
Points that were not simulated are bounded from the measured ones (BLER is
non-increasing in SNR): below the first simulated point it counts as 1, above
the last one as the last measured value. When no MCS qualifies the most
robust one is returned with ``reliable=False`` (the link will then mostly
fail: the digital cliff).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from editable_deepsc.channel.digital import send_bits
from editable_deepsc.channel.ldpc import DEFAULT_DECODER, get_code
from editable_deepsc.channel.qam import MODULATIONS, Modulation
from editable_deepsc.errors import BadInput
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.vocab import CHANNELS

TABLE_PATH = Path(__file__).with_name("mcs_bler.json")
TABLE_K = 1024
"""Information bits per code block in the measurement."""


@dataclass(frozen=True)
class MCS:
    """A modulation and a code rate."""

    modulation: str
    code_rate: float

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation][1]

    @property
    def efficiency(self) -> float:
        """Information bits per complex channel use, ``m·r``."""
        return self.bits_per_symbol * self.code_rate

    @property
    def name(self) -> str:
        return f"{self.modulation}-r{self.code_rate:.3f}"


MCS_CANDIDATES: tuple[MCS, ...] = (
    MCS("bpsk", 1 / 4), MCS("bpsk", 1 / 3),
    MCS("qpsk", 1 / 4), MCS("qpsk", 1 / 3), MCS("qpsk", 1 / 2), MCS("qpsk", 2 / 3), MCS("qpsk", 3 / 4),
    MCS("qpsk", 5 / 6),
    MCS("16qam", 1 / 2), MCS("16qam", 2 / 3), MCS("16qam", 3 / 4), MCS("16qam", 5 / 6),
    MCS("64qam", 2 / 3), MCS("64qam", 3 / 4), MCS("64qam", 5 / 6),
)
"""Candidates; dominated pairs (e.g. BPSK r=1/2 vs QPSK r=1/4) are left out."""

SNR_GRIDS: dict[str, tuple[float, ...]] = {
    "awgn": tuple(s / 2 for s in range(-16, 61)),             # 0.5 dB steps (the waterfall is ~1 dB wide)
    "rayleigh": tuple(float(s) for s in range(-8, 43)),       # 1 dB steps (Monte Carlo on every 2nd)
}


def code_length(mcs: MCS, k: int = TABLE_K) -> int:
    """Coded bits of a ``k``-bit block at ``mcs``: the smallest multiple of ``m`` with ``k/n ≤ r``."""
    m = mcs.bits_per_symbol
    return m * math.ceil(k / (mcs.code_rate * m) - 1e-9)


def measure_point(
    mcs: MCS, channel: str, snr_db: float, num_blocks: int, rng: torch.Generator,
    k: int = TABLE_K, decoder: str = DEFAULT_DECODER, batch: int = 50, probe: int = 10,
) -> tuple[float, float, int]:
    """Simulate ``num_blocks`` random code blocks of ``mcs`` at ``snr_db``.

    For ``"rayleigh"`` every block has its own gain ``h ~ CN(0, 1)`` (quasi-static).
    The first ``probe`` blocks are a probe: if all of them fail the point ends
    there with BLER 1 (below the waterfall nothing else is learnt).

    Returns
    -------
    bler : float
    ber : float
        Information-bit error rate after decoding.
    blocks : int
        Blocks simulated.
    """
    n = code_length(mcs, k)
    code = get_code(k, n, mcs.bits_per_symbol)
    mod = Modulation(mcs.modulation)
    errs = bit_errs = done = 0
    while done < num_blocks:
        b = min(probe if done == 0 else batch, num_blocks - done)
        u = torch.randint(0, 2, (b, k), generator=rng)
        c = code.encode(u)
        out = send_bits(c, mod, channel, snr_db, rng=rng)
        u_hat = code.decode(out.llr, decoder)
        wrong = u_hat != u.to(torch.uint8)
        errs += int(wrong.any(dim=1).sum())
        bit_errs += int(wrong.sum())
        done += b
        if errs == done == probe:
            break
    return errs / done, bit_errs / (done * k), done


def shannon_snr_db(mcs: MCS) -> float:
    """SNR (dB) at which AWGN capacity equals the MCS's efficiency, ``10·log10(2^{m·r} − 1)``."""
    return 10.0 * math.log10(2.0 ** mcs.efficiency - 1.0)


def awgn_curve(entry: dict, grid: list[float] | tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Measured AWGN points of one entry as a non-increasing curve ``(snr_db, bler)``.

    Unsimulated points below the first measurement count as BLER 1, above the
    last one as 0 (the AWGN walk stops at a point with no block error).
    """
    pts = [(s, b) for s, b in zip(grid, entry["bler"]) if b is not None]
    snr = np.array([grid[0] - 1.0] + [s for s, _ in pts] + [grid[-1] + 1.0])
    bler = np.array([1.0] + [b for _, b in pts] + [0.0])
    return snr, np.minimum.accumulate(bler)


def rayleigh_from_awgn(entry: dict, awgn_grid, rayleigh_grid, num_quantiles: int = 4000) -> list[float]:
    """Quasi-static Rayleigh BLER from the measured AWGN curve: ``E_h[BLER_awgn(SNR·|h|²)]``.

    With one gain per code block known at the receiver, the equalised block
    sees an AWGN channel at ``SNR·|h|²`` with exact LLRs, so averaging the
    AWGN curve (linear interpolation in dB) over ``|h|² ~ Exp(1)``
    (``num_quantiles`` mid-point quantiles) gives its BLER.
    """
    snr, bler = awgn_curve(entry, awgn_grid)
    q = (np.arange(num_quantiles) + 0.5) / num_quantiles
    gain_db = 10.0 * np.log10(-np.log1p(-q))
    out = []
    for s in rayleigh_grid:
        eff = s + gain_db
        vals = np.interp(eff, snr, bler, left=1.0, right=0.0)
        out.append(float(vals.mean()))
    return out


def measure_table(
    channels: tuple[str, ...] = CHANNELS,
    num_blocks: int = 100,
    seed: int = 0,
    decoder: str = DEFAULT_DECODER,
    stop_bler: dict[str, float] | None = None,
    rayleigh_mc_step: int = 2,
    progress: bool = True,
) -> dict:
    """Measure the BLER table (JSON-ready dict; see ``scripts/measure_mcs.py``).

    For each MCS and channel the SNR grid is walked upwards from the grid
    point just below the Shannon limit of the MCS (lower SNRs: not simulated)
    and stops after the first point whose BLER is ≤ ``stop_bler[channel]``
    (AWGN 0: no error in ``num_blocks``; Rayleigh 0.02), so each curve costs a
    few points. Unsimulated points are stored as ``null``.

    For Rayleigh the Monte-Carlo walk (every ``rayleigh_mc_step``-th grid
    point) is stored as ``bler_mc``; the ``bler`` used for MCS selection is
    :func:`rayleigh_from_awgn` of the same MCS's AWGN measurement when AWGN is
    measured in the same run (smooth and monotone, where 100 Monte-Carlo blocks
    give ±0.03 at 10% BLER), else the Monte-Carlo values.
    """
    from tqdm import tqdm

    stop = {"awgn": 0.0, "rayleigh": 0.02, **(stop_bler or {})}
    entries = []
    awgn_rows: dict[str, dict] = {}
    jobs = [(mcs, ch) for ch in channels for mcs in MCS_CANDIDATES]
    for mcs, ch in tqdm(jobs, desc="MCS", disable=not progress):
        grid = SNR_GRIDS[ch]
        step = rayleigh_mc_step if ch == "rayleigh" else 1
        start = shannon_snr_db(mcs) - 1.0
        bler: list[float | None] = [None] * len(grid)
        ber: list[float | None] = [None] * len(grid)
        blocks: list[int | None] = [None] * len(grid)
        sim = list(range(0, len(grid), step))
        first = max([j for j, i in enumerate(sim) if grid[i] <= start], default=0)
        for i in sim[first:]:
            rng = make_generator(derive_seed(seed, ch, mcs.name, grid[i]))
            bler[i], ber[i], blocks[i] = measure_point(mcs, ch, grid[i], num_blocks, rng, decoder=decoder)
            if bler[i] <= stop[ch]:
                break
        row = {"modulation": mcs.modulation, "code_rate": mcs.code_rate, "channel": ch,
               "efficiency": mcs.efficiency, "n": code_length(mcs), "bler": bler, "ber": ber, "blocks": blocks}
        if ch == "awgn":
            awgn_rows[mcs.name] = row
        elif mcs.name in awgn_rows:
            row["bler_mc"] = bler
            row["bler"] = rayleigh_from_awgn(awgn_rows[mcs.name], SNR_GRIDS["awgn"], grid)
            row["bler_source"] = "AWGN measurement averaged over |h|^2 ~ Exp(1); bler_mc: Monte Carlo check"
        entries.append(row)
    return {
        "version": 1,
        "k_info_bits": TABLE_K,
        "decoder": decoder,
        "num_blocks_per_point": num_blocks,
        "seed": seed,
        "snr_grids_db": {ch: list(SNR_GRIDS[ch]) for ch in channels},
        "stop_bler": {ch: stop[ch] for ch in channels},
        "rayleigh_fading": "one gain h ~ CN(0,1) per code block, known at the receiver",
        "rayleigh_mc_step": rayleigh_mc_step,
        "entries": entries,
    }


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"MCS table not found: {p} (run scripts/measure_mcs.py)")
    return json.loads(p.read_text())


def load_table(path: str | Path | None = None) -> dict:
    """Read the measured table (default: the one shipped in the package)."""
    return _load(str(path or TABLE_PATH))


def bler_at(entry: dict, grid: list[float], snr_db: float) -> float:
    """Conservative BLER of one table entry at ``snr_db`` (see the module docstring)."""
    idx = [i for i, s in enumerate(grid) if s <= snr_db + 1e-9]
    if not idx:
        return 1.0
    vals = entry["bler"]
    measured = [i for i, v in enumerate(vals) if v is not None]
    if not measured:
        return 1.0
    i = idx[-1]
    if vals[i] is not None:
        return float(vals[i])
    if i < measured[0]:
        return 1.0
    return float(vals[max(j for j in measured if j <= i)])


@dataclass(frozen=True)
class MCSChoice:
    """The MCS picked for an SNR.

    Attributes
    ----------
    modulation : str
    code_rate : float
    bler : float
        Table BLER at the SNR (conservative lookup).
    reliable : bool
        ``bler < target``; ``False`` when no MCS qualifies (most robust one returned).
    """

    modulation: str
    code_rate: float
    bler: float
    reliable: bool

    @property
    def mcs(self) -> MCS:
        return MCS(self.modulation, self.code_rate)

    def to_json(self) -> dict:
        return asdict(self)


def select_mcs(snr_db: float, channel: str = "awgn", target_bler: float = 0.1, table: dict | None = None) -> MCSChoice:
    """Highest-efficiency MCS whose measured BLER at ``snr_db`` is below ``target_bler``.

    Parameters
    ----------
    snr_db : float
        Average SNR per complex symbol.
    channel : str
        ``"awgn"`` or ``"rayleigh"``.
    target_bler : float
    table : dict, optional
        A table as written by :func:`measure_table` (default: the shipped one).

    Returns
    -------
    MCSChoice
    """
    tab = table or load_table()
    ch = str(channel).strip().lower()
    grid = tab["snr_grids_db"].get(ch)
    if grid is None:
        raise BadInput(f"MCS table has no channel {channel!r} (has: {', '.join(tab['snr_grids_db'])})")
    rows = [e for e in tab["entries"] if e["channel"] == ch]
    scored = [(e, bler_at(e, grid, snr_db)) for e in rows]
    ok = [(e, b) for e, b in scored if b < target_bler]
    if ok:
        e, b = max(ok, key=lambda eb: (eb[0]["efficiency"], -eb[1]))
        return MCSChoice(e["modulation"], float(e["code_rate"]), b, True)
    e, b = min(scored, key=lambda eb: (eb[1], eb[0]["efficiency"]))
    return MCSChoice(e["modulation"], float(e["code_rate"]), b, False)


__all__ = [
    "MCS",
    "MCSChoice",
    "MCS_CANDIDATES",
    "SNR_GRIDS",
    "TABLE_K",
    "TABLE_PATH",
    "bler_at",
    "load_table",
    "measure_point",
    "measure_table",
    "rayleigh_from_awgn",
    "select_mcs",
    "shannon_snr_db",
]
