"""Digital baseline for latents: quantise the top PCA coordinates, send them with 5G LDPC + QAM.

Separate source and channel coding at the same ``k`` complex channel uses as
the analog semantic codec:

1. **MCS** -- the transmitter knows the average SNR and picks, from the
   measured 5G-LDPC table (:func:`~editable_deepsc.channel.mcs.select_mcs`),
   the modulation and code rate with the highest efficiency whose block error
   rate there is below 10% (adaptive modulation and coding: the best case for
   a digital link).
2. **Transport** -- :func:`~editable_deepsc.channel.transport.plan_blocks`
   splits the ``k`` symbols into code blocks with a CRC each; their payload is
   the bit budget ``B``.
3. **Source code** -- the whitened PCA coordinates (unit variance) are
   quantised with uniform midtread scalar quantisers (``2^b`` levels
   ``(i - 2^(b-1))·Δ``, zero included, so a coordinate that happens to be at
   its mean costs no error; ``Δ`` MSE-optimal for a unit Gaussian); bits are
   allocated greedily (each next bit where it removes the most latent
   distortion ``λᵢ·(c(b) − c(b+1))``, ``λᵢ`` the PCA variance, ``c(b)`` the
   quantiser's MSE for a unit Gaussian) until ``B`` is used, at most
   :data:`MAX_BITS` per coordinate.
4. **Receiver** -- LDPC BP decoding and CRC check; a coordinate with any bit
   in a failed block is replaced by its mean (error concealment), so a failed
   link degrades to the mean latent instead of garbage.

:func:`ideal_digital` is the same source code at the channel's capacity
``k·log2(1 + SNR)`` bits, error-free (an upper bound for any digital scheme
with this quantiser; for Rayleigh the instantaneous capacity, i.e. ideal rate
adaptation to the known gain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from editable_deepsc.channel.digital import send_bits
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.mcs import select_mcs
from editable_deepsc.channel.transport import decode_payload, encode_payload, plan_blocks

MAX_BITS = 10


@lru_cache(maxsize=1)
def _quantiser_table() -> tuple[np.ndarray, np.ndarray]:
    """Step and MSE of the MSE-optimal uniform midtread quantiser of N(0, 1) for b = 0..MAX_BITS bits."""
    x = np.linspace(-10, 10, 40001)
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    dx = x[1] - x[0]
    steps, mses = [0.0], [1.0]
    for b in range(1, MAX_BITS + 1):
        levels = 2**b
        best = (np.inf, 0.0)
        for step in np.geomspace(8.0 / levels * 0.05, 8.0 / levels * 2.0, 120):
            q = _quantise_np(x, step, b)
            mse = float(((x - q) ** 2 * pdf).sum() * dx)
            if mse < best[0]:
                best = (mse, float(step))
        lo, hi = best[1] / 1.05, best[1] * 1.05  # refine
        for step in np.linspace(lo, hi, 60):
            q = _quantise_np(x, step, b)
            mse = float(((x - q) ** 2 * pdf).sum() * dx)
            if mse < best[0]:
                best = (mse, float(step))
        mses.append(best[0])
        steps.append(best[1])
    return np.asarray(steps), np.asarray(mses)


def _quantise_np(x: np.ndarray, step: float, b: int) -> np.ndarray:
    idx = np.clip(np.round(x / step) + 2 ** (b - 1), 0, 2**b - 1)
    return (idx - 2 ** (b - 1)) * step


def allocate_bits(variances: torch.Tensor, budget: int, max_bits: int = MAX_BITS) -> torch.Tensor:
    """Greedy bit allocation over coordinates of the given variances.

    Parameters
    ----------
    variances : Tensor, float, shape (D,)
        Variance of each (whitened-before-quantisation) coordinate, e.g. PCA eigenvalues.
    budget : int
        Total bits.
    max_bits : int
        Cap per coordinate.

    Returns
    -------
    Tensor, int64, shape (D,)
        Bits per coordinate, summing to ``min(budget, D·max_bits)``.
    """
    _, mse = _quantiser_table()
    lam = variances.double().cpu().numpy()
    bits = np.zeros(lam.size, dtype=np.int64)
    gain = lam * (mse[0] - mse[1])
    for _ in range(int(min(budget, lam.size * max_bits))):
        i = int(np.argmax(gain))
        bits[i] += 1
        gain[i] = lam[i] * (mse[bits[i]] - mse[bits[i] + 1]) if bits[i] < max_bits else -np.inf
    return torch.from_numpy(bits)


def quantise(u: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Quantiser indices of whitened coordinates ``u`` (N, D) with ``bits`` (D,) each → int64 (N, D)."""
    steps, _ = _quantiser_table()
    b = bits.clamp_min(1).double()
    step = torch.as_tensor(steps, dtype=torch.float64)[bits.clamp_min(1)]
    half = torch.pow(2.0, b - 1)
    idx = torch.round(u.double() / step) + half
    return torch.minimum(idx.clamp_min(0), 2 * half - 1).long() * (bits > 0)


def dequantise(idx: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Reconstruction values (N, D) float32 of indices ``idx`` (0 where a coordinate has no bits)."""
    steps, _ = _quantiser_table()
    step = torch.as_tensor(steps, dtype=torch.float64)[bits.clamp_min(1)]
    half = torch.pow(2.0, bits.clamp_min(1).double() - 1)
    return ((idx.double() - half) * step * (bits > 0)).float()


def pack(idx: torch.Tensor, bits: torch.Tensor) -> np.ndarray:
    """Indices (N, D) → bit matrix uint8 (N, sum(bits)), each index MSB first."""
    cols = []
    for i in torch.nonzero(bits).flatten().tolist():
        b = int(bits[i])
        v = idx[:, i].numpy()
        cols.extend(((v >> (b - 1 - j)) & 1).astype(np.uint8) for j in range(b))
    return np.stack(cols, 1) if cols else np.zeros((idx.shape[0], 0), dtype=np.uint8)


def unpack(payload: np.ndarray, bits: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack`: (N, sum(bits)) uint8 → indices int64 (N, D)."""
    out = torch.zeros(payload.shape[0], bits.numel(), dtype=torch.int64)
    pos = 0
    for i in torch.nonzero(bits).flatten().tolist():
        b = int(bits[i])
        v = np.zeros(payload.shape[0], dtype=np.int64)
        for j in range(b):
            v = (v << 1) | payload[:, pos + j].astype(np.int64)
        out[:, i] = torch.from_numpy(v)
        pos += b
    return out


def coordinate_of_bit(bits: torch.Tensor) -> np.ndarray:
    """For each payload bit (in :func:`pack` order), the coordinate it belongs to → int64 (sum(bits),)."""
    return np.repeat(np.arange(bits.numel()), bits.numpy())


@dataclass
class DigitalResult:
    """Output of :func:`digital_latent_link`.

    Attributes
    ----------
    w_hat : Tensor, float32, shape (N, num_ws, w_dim)
    modulation : str
    code_rate : float
    payload_bits : int
        Bit budget ``B`` of the ``k`` symbols.
    block_error_rate : float
        Fraction of failed code blocks.
    link_ok : float
        Fraction of latents whose blocks all passed their CRC.
    mcs_reliable : bool
        Whether the MCS table had an MCS below the 10% BLER target at this SNR.
    """

    w_hat: torch.Tensor
    modulation: str
    code_rate: float
    payload_bits: int
    block_error_rate: float
    link_ok: float
    mcs_reliable: bool


def digital_latent_link(
    w_plus: torch.Tensor,
    pca: LatentPCA,
    k: int,
    channel: str,
    snr_db: float,
    rng: torch.Generator | None = None,
) -> DigitalResult:
    """Send latents (N, num_ws, w_dim) digitally over ``k`` complex channel uses (see module docstring).

    Returns
    -------
    DigitalResult
    """
    choice = select_mcs(float(snr_db), channel)
    plan = plan_blocks(k, choice.modulation, choice.code_rate)
    n = w_plus.shape[0]
    budget = plan.payload_bits
    bits = allocate_bits(pca.std.pow(2), budget)
    u = pca.whiten(w_plus)
    idx = quantise(u, bits)
    payload = pack(idx, bits)
    owner = coordinate_of_bit(bits)
    starts = np.cumsum([0] + [b.payload_bits for b in plan.blocks])
    rx_payload = np.zeros_like(payload)
    failed_coords = np.zeros((n, bits.numel()), dtype=bool)
    failed_blocks = 0
    all_ok = 0
    for i in range(n if plan.num_blocks else 0):  # no block fits: nothing is sent, the mean is received
        coded = encode_payload(payload[i], plan)
        out = send_bits(coded, choice.modulation, channel, float(snr_db), rng=rng)
        dec = decode_payload(out.llr, plan)
        rx_payload[i] = dec.bits[: payload.shape[1]]
        failed_blocks += int((~dec.block_ok).sum())
        all_ok += int(dec.all_ok)
        for b in np.nonzero(~dec.block_ok)[0]:
            lo, hi = starts[b], min(starts[b + 1], payload.shape[1])
            if lo < hi:
                failed_coords[i, np.unique(owner[lo:hi])] = True
    u_hat = dequantise(unpack(rx_payload, bits), bits)
    u_hat[torch.from_numpy(failed_coords)] = 0.0
    return DigitalResult(
        w_hat=pca.unwhiten(u_hat),
        modulation=choice.modulation,
        code_rate=float(choice.code_rate),
        payload_bits=int(budget),
        block_error_rate=failed_blocks / max(1, n * plan.num_blocks),
        link_ok=all_ok / max(1, n) if plan.num_blocks else 0.0,
        mcs_reliable=bool(choice.reliable),
    )


def ideal_digital(
    w_plus: torch.Tensor,
    pca: LatentPCA,
    k: int,
    snr_db: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same quantiser at the capacity ``k·log2(1 + SNR)`` bits per latent, error-free.

    Parameters
    ----------
    snr_db : float or Tensor (N,)
        (Instantaneous) SNR per latent.

    Returns
    -------
    w_hat : Tensor, float32, shape (N, num_ws, w_dim)
    budget : Tensor, int64, shape (N,)
        Bits each latent got.
    """
    n = w_plus.shape[0]
    snr = torch.as_tensor(snr_db, dtype=torch.float64).expand(n)
    budget = torch.floor(k * torch.log2(1.0 + torch.pow(10.0, snr / 10.0))).long()
    u = pca.whiten(w_plus)
    out = torch.zeros_like(u)
    var = pca.std.pow(2)
    cache: dict[int, torch.Tensor] = {}
    for i in range(n):
        b = int(budget[i])
        if b not in cache:
            cache[b] = allocate_bits(var, b)
        bits = cache[b]
        out[i] = dequantise(quantise(u[i : i + 1], bits), bits)[0]
    return pca.unwhiten(out), budget


def opta_sdr_db(variances: torch.Tensor, k: int, snr_db: float) -> float:
    """Best possible latent SDR (dB) for a Gaussian source with these PCA ``variances`` over ``k`` AWGN uses.

    Reverse water-filling at the rate ``R = k·log2(1 + SNR)`` bits (Shannon's
    separation bound; OPTA): ``D(θ) = Σ min(θ, λᵢ)`` with
    ``Σ max(0, ½·log2(λᵢ/θ)) = R``; returns ``10·log10(Σλᵢ / D)``.
    """
    lam = variances.double().clamp_min(1e-30)
    rate = k * math.log2(1.0 + 10.0 ** (snr_db / 10.0))
    lo, hi = math.log(float(lam.min()) * 1e-12), math.log(float(lam.max()))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        r = float(torch.clamp(0.5 * torch.log2(lam / math.exp(mid)), min=0).sum())
        lo, hi = (mid, hi) if r > rate else (lo, mid)
    theta = math.exp(0.5 * (lo + hi))
    d = float(torch.clamp(lam, max=theta).sum())
    return 10.0 * math.log10(float(lam.sum()) / d)
