"""Delta codec for follow-up turns: send only what an edit changed.

In a multi-turn session the receiver already holds the previous latent
``ŵ_{t-1}``. A follow-up edit ("a bit more", "now make him older") moves the
latent by ``δ = w_t − w_{t−1}``, and edits move latents along few directions
(the attribute directions and their refinements), so ``δ`` lives in a
low-dimensional subspace of W+. :class:`DeltaCodec` sends the leading
whitened principal coordinates of ``δ`` — principal axes fitted on edit
deltas (:func:`fit_delta_statistics`) — as uncoded complex symbols, normalised
by a per-delta scale that travels digitally in a few symbols, and the
receiver adds the LMMSE estimate to ``ŵ_{t-1}``. Deltas range over orders of
magnitude ("a bit more" vs a head turn): without the per-delta scale a small
delta would be sent at a small fraction of the power and drown in the noise.

Because the receiver adds ``δ̂`` to its own previous estimate, errors add up
over turns; :class:`~editable_deepsc.system.Session` therefore sends a full
refresh through the semantic codec every few turns.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from torch import nn

from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.power import complex_to_real, real_to_complex
from editable_deepsc.channel.snr import snr_to_no
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.zoo import registry

DELTA_FORMAT = "edsc-delta-statistics"


def delta_stats_name(generator_name: str) -> str:
    """Zoo name of the edit-delta statistics of ``generator_name``, e.g. ``edsc-delta-faces64``."""
    short = generator_name[len("edsc-"):] if generator_name.startswith("edsc-") else generator_name
    return f"edsc-delta-{short}"


class DeltaCodec(nn.Module):
    """Analog transmission of an edit delta in its principal basis, with a digital scale.

    Follow-up deltas vary in size by orders of magnitude ("a bit more" vs a head
    turn), so each delta is power-normalised before it is sent, and its scale
    travels as side information:

    * symbols ``0 .. SCALE_BITS-1``: the Gray-coded index of the scale on a
      quarter-octave grid (``s = 2^((e - 23)/4)``, ``e`` in 0..31), one bit per
      complex symbol (BPSK on both real and imaginary parts, unit power);
    * symbols ``SCALE_BITS .. k-1``: the first ``2(k - SCALE_BITS)`` whitened
      principal coordinates of the delta divided by ``s``, paired into complex
      symbols (power within ±19% of 1 because ``s`` is within a quarter octave
      of the coordinates' RMS).

    The receiver decides the bits, rebuilds ``s`` and applies the LMMSE gain
    ``1/(1 + no)`` to the payload; coordinates not sent are set to their mean.

    Parameters
    ----------
    pca : LatentPCA
        Statistics of edit deltas (N, num_ws, w_dim), see :func:`fit_delta_statistics`.
    k : int
        Complex channel uses per delta, ``SCALE_BITS < k <= SCALE_BITS + num_ws·w_dim / 2``.

    Notes
    -----
    ``encode(delta)`` → (N, k) complex64; ``decode(y, snr_db)`` → (N, num_ws, w_dim)
    float32 estimate of ``delta``; ``forward(delta, channel, snr_db)`` does both around a channel.
    """

    SCALE_BITS = 5
    _OFFSET = 23  # e = 23 <-> s = 1; s in [2^-5.75, 2^2]

    def __init__(self, pca: LatentPCA, k: int):
        super().__init__()
        top = self.SCALE_BITS + pca.dim // 2
        if not self.SCALE_BITS < int(k) <= top:
            raise BadInput(f"delta codec k must be in [{self.SCALE_BITS + 1}, {top}], got {k}")
        self.pca, self.k = pca, int(k)

    @property
    def coords(self) -> int:
        """Real principal coordinates carried by the payload."""
        return 2 * (self.k - self.SCALE_BITS)

    def _scale_index(self, u: torch.Tensor) -> torch.Tensor:
        rms = u.pow(2).mean(1).sqrt().clamp_min(1e-12)
        e = torch.round(4.0 * torch.log2(rms) + self._OFFSET)
        return e.clamp(0, 2 ** self.SCALE_BITS - 1).long()

    def _scale(self, e: torch.Tensor) -> torch.Tensor:
        return torch.pow(2.0, (e.float() - self._OFFSET) / 4.0)

    def _coordinates(self, delta: torch.Tensor) -> torch.Tensor:
        # principal coordinates of the delta itself (no mean removed: a delta's sign is its meaning)
        return (delta.reshape(delta.shape[0], -1) @ self.pca.axes) / self.pca.std

    def encode(self, delta: torch.Tensor, snr_db: float | torch.Tensor | None = None) -> torch.Tensor:
        """Deltas (N, num_ws, w_dim) float32 → symbols (N, k) complex64.

        A delta larger than the top of the scale grid is sent at unit payload power
        (its estimate is then shrunk by that factor; rare for edit deltas).
        """
        u = self._coordinates(delta)[:, : self.coords]
        e = self._scale_index(u)
        gray = e ^ (e >> 1)
        bits = torch.stack([(gray >> (self.SCALE_BITS - 1 - i)) & 1 for i in range(self.SCALE_BITS)], 1)
        head = (2.0 * bits.float() - 1.0) * complex(1.0, 1.0) / math.sqrt(2.0)
        v = u / self._scale(e).unsqueeze(1)
        v = v / v.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1.0)
        payload = real_to_complex(v) / math.sqrt(2.0)
        return torch.cat([head.to(torch.complex64), payload.to(torch.complex64)], 1)

    def decode(self, y: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Equalised symbols (N, k) complex64 + SNR (scalar or (N,)) dB → delta estimates (N, num_ws, w_dim)."""
        head, payload = y[:, : self.SCALE_BITS], y[:, self.SCALE_BITS :]
        bits = ((head.real + head.imag) > 0).long()
        gray = sum(bits[:, i] << (self.SCALE_BITS - 1 - i) for i in range(self.SCALE_BITS))
        e = gray.clone()
        shift = gray >> 1
        while bool(shift.any()):
            e = e ^ shift
            shift = shift >> 1
        no = snr_to_no(torch.as_tensor(snr_db, dtype=torch.float32)).reshape(-1, 1)
        u_head = complex_to_real(payload / (1.0 + no)) * math.sqrt(2.0) * self._scale(e).unsqueeze(1)
        u = torch.zeros(y.shape[0], self.pca.dim, dtype=u_head.dtype)
        u[:, : self.coords] = u_head
        x = (u * self.pca.std) @ self.pca.axes.T  # coordinates not sent are zero
        return x.view(y.shape[0], self.pca.num_ws, self.pca.w_dim)

    def forward(self, delta, channel, snr_db, generator=None):
        """Encode, send through ``channel`` at ``snr_db``, decode (N, num_ws, w_dim)."""
        from editable_deepsc.channel.codec import SemanticCodec, transmit_symbols

        snr = SemanticCodec._snr(snr_db, delta.shape[0])
        y, snr_rx = transmit_symbols(self.encode(delta), channel, snr, generator)
        return self.decode(y, snr_rx)

    def subspace(self) -> torch.Tensor:
        """The axes the payload carries: float32 (num_ws·w_dim, coords), orthonormal columns.

        A delta in their span is sent without truncation error (see
        ``Editor.edit(subspace=...)``).
        """
        return self.pca.axes[:, : self.coords].detach().clone()

    def captured_energy(self, delta: torch.Tensor) -> torch.Tensor:
        """Fraction of each delta's energy in the sent axes → (N,) float32."""
        c = delta.reshape(delta.shape[0], -1) @ self.pca.axes
        return c[:, : self.coords].pow(2).sum(1) / c.pow(2).sum(1).clamp_min(1e-12)


@torch.no_grad()
def fit_delta_statistics(deltas: torch.Tensor) -> LatentPCA:
    """Fit principal axes of edit deltas.

    Parameters
    ----------
    deltas : Tensor, float32, shape (M, num_ws, w_dim)
        ``w_edit − w_0`` of many edits, M ≥ 2, all finite.

    Returns
    -------
    LatentPCA
    """
    if deltas.dim() != 3 or deltas.shape[0] < 2:
        raise BadInput(f"need deltas of shape (M>=2, num_ws, w_dim), got {tuple(deltas.shape)}")
    if not torch.isfinite(deltas).all():
        raise BadInput("edit deltas contain NaN or inf")
    return LatentPCA(deltas.shape[1], deltas.shape[2]).fit(deltas)


def save_delta_statistics(pca: LatentPCA, path: str | os.PathLike, generator_name: str) -> str:
    """Write delta statistics as safetensors (metadata: format, generator); return the sha256."""
    meta = {"format": DELTA_FORMAT, "generator": generator_name,
            "num_ws": str(pca.num_ws), "w_dim": str(pca.w_dim)}
    return registry.save_state_dict(pca.state_dict(), path, metadata=meta)


def load_delta_statistics(name_or_path: str | os.PathLike, num_ws: int, w_dim: int) -> LatentPCA:
    """Load delta statistics by zoo name or path, checking they fit a (num_ws, w_dim) latent.

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, sha256 mismatch or wrong shapes.
    """
    state = registry.load_state_dict(name_or_path)
    pca = LatentPCA(num_ws, w_dim)
    want = {k: tuple(v.shape) for k, v in pca.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        raise CheckpointError(f"delta statistics {Path(str(name_or_path)).name} do not fit a "
                              f"({num_ws}, {w_dim}) latent: {got}")
    pca.load_state_dict(state)
    return pca
