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
over turns; :class:`~editable_deepsc.session.Session` therefore sends a full
refresh through the semantic codec every few turns.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from torch import nn

from editable_deepsc.channel.codec import SemanticCodec, transmit_symbols
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.separable_pca import SeparableLatentPCA
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
    * symbols ``SCALE_BITS .. k-1``: the first ``m`` whitened principal
      coordinates of the delta divided by ``s``, repeated cyclically to fill the
      ``2(k - SCALE_BITS)`` real slots and paired into complex symbols (power
      within ±19% of 1 because ``s`` is within a quarter octave of the
      coordinates' RMS).

    ``m`` depends on the nominal SNR, which both ends know (the system is
    SNR-aware): :meth:`coords_for` picks, from ``slots / r`` for r = 1…8, the
    ``m`` that minimises the expected error of a typical delta, the noise on the
    ``m`` coordinates sent ``r`` times each (``λ_i / (1 + r·SNR)``) plus the
    energy of those not sent (``λ_i`` the second moments of the training
    deltas' principal coordinates). At low SNR it sends fewer coordinates more often; at high SNR
    all of them once. Without an SNR (``snr_db=None``) every slot carries its
    own coordinate.

    The receiver decides the bits, rebuilds ``s``, averages the copies of each
    coordinate and applies the LMMSE gain ``1/(1 + no/r_i)``; coordinates not
    sent are zero.

    Parameters
    ----------
    pca : LatentPCA or SeparableLatentPCA
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

    MAX_REPEAT = 8

    @property
    def slots(self) -> int:
        """Real channel uses of the payload: ``2(k - SCALE_BITS)``."""
        return 2 * (self.k - self.SCALE_BITS)

    def coords_for(self, snr_db: float | None) -> int:
        """Principal coordinates sent at nominal SNR ``snr_db`` (``None``: one per slot).

        Minimises ``Σ_{i<m} λ_i / (1 + r·snr) + Σ_{i≥m} λ_i`` over ``m = slots // r``, r = 1…8.
        """
        if snr_db is None:
            return self.slots
        # second moments of the training deltas' coordinates (a delta is sent uncentred)
        lam = self.pca.std.double().pow(2) + self.pca.rotate(self.pca.mean[None]).double()[0].pow(2)
        total = float(lam.sum())
        snr = 10.0 ** (float(snr_db) / 10.0)
        best_m, best_err = self.slots, float("inf")
        for r in range(1, self.MAX_REPEAT + 1):
            m = self.slots // r
            if m < 1:
                break
            kept = float(lam[:m].sum())
            err = kept / (1.0 + (self.slots / m) * snr) + (total - kept)
            if err < best_err - 1e-12:
                best_m, best_err = m, err
        return best_m

    def _copies(self, m: int) -> torch.Tensor:
        """Coordinate index of every payload slot, (slots,) int64: ``0, 1, …, m-1, 0, 1, …``."""
        return torch.arange(self.slots) % m

    def _scale_index(self, u: torch.Tensor) -> torch.Tensor:
        rms = u.pow(2).mean(1).sqrt().clamp_min(1e-12)
        e = torch.round(4.0 * torch.log2(rms) + self._OFFSET)
        return e.clamp(0, 2 ** self.SCALE_BITS - 1).long()

    def _scale(self, e: torch.Tensor) -> torch.Tensor:
        return torch.pow(2.0, (e.float() - self._OFFSET) / 4.0)

    def _coordinates(self, delta: torch.Tensor) -> torch.Tensor:
        # principal coordinates of the delta itself (no mean removed: a delta's sign is its meaning)
        return self.pca.rotate(delta) / self.pca.std

    def encode(self, delta: torch.Tensor, snr_db: float | None = None) -> torch.Tensor:
        """Deltas (N, num_ws, w_dim) float32 → symbols (N, k) complex64.

        ``snr_db``: the nominal SNR both ends know, which sets how many
        coordinates are sent (:meth:`coords_for`); the receiver must decode with
        the same value. A delta larger than the top of the scale grid is sent at
        unit payload power (its estimate is then shrunk by that factor; rare for
        edit deltas).
        """
        m = self.coords_for(snr_db)
        u = self._coordinates(delta)[:, :m]
        e = self._scale_index(u)
        gray = e ^ (e >> 1)
        bits = torch.stack([(gray >> (self.SCALE_BITS - 1 - i)) & 1 for i in range(self.SCALE_BITS)], 1)
        head = (2.0 * bits.float() - 1.0) * complex(1.0, 1.0) / math.sqrt(2.0)
        v = u / self._scale(e).unsqueeze(1)
        v = v / v.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1.0)
        payload = real_to_complex(v[:, self._copies(m)]) / math.sqrt(2.0)
        return torch.cat([head.to(torch.complex64), payload.to(torch.complex64)], 1)

    def decode(
        self, y: torch.Tensor, snr_db: float | torch.Tensor, nominal_snr_db: float | None = None
    ) -> torch.Tensor:
        """Equalised symbols (N, k) complex64 + received SNR (scalar or (N,)) dB → delta estimates (N, num_ws, w_dim).

        ``nominal_snr_db``: the value the transmitter encoded with (``None``: the
        received SNR if it is a plain number, else one coordinate per slot).
        """
        if nominal_snr_db is None and not isinstance(snr_db, torch.Tensor):
            nominal_snr_db = float(snr_db)
        m = self.coords_for(nominal_snr_db)
        head, payload = y[:, : self.SCALE_BITS], y[:, self.SCALE_BITS :]
        bits = ((head.real + head.imag) > 0).long()
        gray = sum(bits[:, i] << (self.SCALE_BITS - 1 - i) for i in range(self.SCALE_BITS))
        e = gray.clone()
        shift = gray >> 1
        while bool(shift.any()):
            e = e ^ shift
            shift = shift >> 1
        no = snr_to_no(torch.as_tensor(snr_db, dtype=torch.float32)).reshape(-1, 1)
        copies = self._copies(m)
        count = torch.bincount(copies, minlength=m).float()  # r_i
        raw = complex_to_real(payload) * math.sqrt(2.0)
        mean = torch.zeros(y.shape[0], m, dtype=raw.dtype).index_add_(1, copies, raw) / count
        u_head = mean / (1.0 + no / count) * self._scale(e).unsqueeze(1)
        u = torch.zeros(y.shape[0], self.pca.dim, dtype=u_head.dtype)
        u[:, :m] = u_head
        return self.pca.unrotate(u * self.pca.std)  # coordinates not sent are zero

    def forward(self, delta, channel, snr_db: float, rng=None):
        """Encode at nominal ``snr_db``, send through ``channel``, decode (N, num_ws, w_dim)."""
        snr = SemanticCodec._snr(snr_db, delta.shape[0])
        y, snr_rx = transmit_symbols(self.encode(delta, float(snr_db)), channel, snr, rng)
        return self.decode(y, snr_rx, float(snr_db))

    def subspace(self, snr_db: float | None = None) -> torch.Tensor:
        """The axes the payload carries at nominal ``snr_db``: float32 (num_ws·w_dim, m), orthonormal columns.

        A delta in their span is sent without truncation error (see
        ``Editor.edit(subspace=...)``).
        """
        return self.pca.axes_columns(self.coords_for(snr_db))

    def captured_energy(self, delta: torch.Tensor, snr_db: float | None = None) -> torch.Tensor:
        """Fraction of each delta's energy in the axes sent at nominal ``snr_db`` → (N,) float32."""
        c = self.pca.rotate(delta)
        return c[:, : self.coords_for(snr_db)].pow(2).sum(1) / c.pow(2).sum(1).clamp_min(1e-12)


#: deltas with more coordinates than this are fitted in the separable basis
SEPARABLE_ABOVE = 4096


@torch.no_grad()
def fit_delta_statistics(deltas: torch.Tensor) -> LatentPCA | SeparableLatentPCA:
    """Fit principal axes of edit deltas.

    Parameters
    ----------
    deltas : Tensor, float32, shape (M, num_ws, w_dim)
        ``w_edit − w_0`` of many edits, M ≥ 2, all finite.

    Returns
    -------
    LatentPCA, or SeparableLatentPCA for more than :data:`SEPARABLE_ABOVE` coordinates
        (a full basis of the FFHQ W+ would hold 139 M numbers).
    """
    if deltas.dim() != 3 or deltas.shape[0] < 2:
        raise BadInput(f"need deltas of shape (M>=2, num_ws, w_dim), got {tuple(deltas.shape)}")
    if not torch.isfinite(deltas).all():
        raise BadInput("edit deltas contain NaN or inf")
    basis = SeparableLatentPCA if deltas.shape[1] * deltas.shape[2] > SEPARABLE_ABOVE else LatentPCA
    return basis(deltas.shape[1], deltas.shape[2]).fit(deltas)


def delta_metadata(pca: LatentPCA | SeparableLatentPCA, generator_name: str) -> dict[str, str]:
    """Safetensors metadata of a delta-statistics file: format, generator, latent shape and basis."""
    return {"format": DELTA_FORMAT, "generator": generator_name, "num_ws": str(pca.num_ws), "w_dim": str(pca.w_dim),
            "basis": "separable" if isinstance(pca, SeparableLatentPCA) else "full"}


def save_delta_statistics(pca: LatentPCA, path: str | os.PathLike, generator_name: str) -> str:
    """Write delta statistics as safetensors (metadata: format, generator); return the sha256."""
    return registry.save_state_dict(pca.state_dict(), path, metadata=delta_metadata(pca, generator_name))


def load_delta_statistics(name_or_path: str | os.PathLike, num_ws: int, w_dim: int) -> LatentPCA:
    """Load delta statistics by zoo name or path, checking they fit a (num_ws, w_dim) latent.

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, sha256 mismatch or wrong shapes.
    """
    from editable_deepsc.zoo import loader

    pca = loader.load(name_or_path, kind="delta-statistics")
    if (pca.num_ws, pca.w_dim) != (num_ws, w_dim):
        raise CheckpointError(f"delta statistics {Path(str(name_or_path)).name} do not fit a "
                              f"({num_ws}, {w_dim}) latent: they are ({pca.num_ws}, {pca.w_dim})")
    return pca
