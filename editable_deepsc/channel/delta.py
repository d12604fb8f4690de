"""Delta codec for follow-up turns: send only what an edit changed.

In a multi-turn session the receiver already holds the previous latent
``ŵ_{t-1}``. A follow-up edit ("a bit more", "now make him older") moves the
latent by ``δ = w_t − w_{t−1}``, and edits move latents along few directions
(the attribute directions and their refinements), so ``δ`` lives in a
low-dimensional subspace of W+. :class:`DeltaCodec` sends the first ``2k``
whitened principal coordinates of ``δ`` — principal axes fitted on edit
deltas (:func:`fit_delta_statistics`) — as ``k`` uncoded complex symbols,
exactly as :class:`~editable_deepsc.channel.codec.PCAUncodedCodec` does for
whole latents, and the receiver adds the LMMSE estimate to ``ŵ_{t-1}``.

Power: each sent coordinate has unit variance over the distribution of edit
deltas, so the symbols have unit average power over that distribution (an
average, not a per-sample, power constraint); a small edit uses less power.
The measured per-turn power is reported by the session.

Because the receiver adds ``δ̂`` to its own previous estimate, errors add up
over turns; :class:`~editable_deepsc.system.Session` therefore sends a full
refresh through the semantic codec every few turns.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from editable_deepsc.channel.codec import PCAUncodedCodec
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.zoo import registry

DELTA_FORMAT = "edsc-delta-statistics"


def delta_stats_name(generator_name: str) -> str:
    """Zoo name of the edit-delta statistics of ``generator_name``, e.g. ``edsc-delta-faces64``."""
    short = generator_name[len("edsc-"):] if generator_name.startswith("edsc-") else generator_name
    return f"edsc-delta-{short}"


class DeltaCodec(PCAUncodedCodec):
    """Uncoded analog transmission of an edit delta in its principal basis.

    Parameters
    ----------
    pca : LatentPCA
        Statistics of edit deltas (N, num_ws, w_dim), see :func:`fit_delta_statistics`.
    k : int
        Complex channel uses per delta, ``1 <= k <= num_ws·w_dim / 2``.

    Notes
    -----
    ``encode(delta)`` → (N, k) complex64; ``decode(y, snr_db)`` → (N, num_ws, w_dim)
    float32 LMMSE estimate of ``delta`` (coordinates not sent are set to their mean).
    """

    def __init__(self, pca: LatentPCA, k: int):
        if not 1 <= int(k) <= pca.dim // 2:
            raise BadInput(f"delta codec k must be in [1, {pca.dim // 2}], got {k}")
        super().__init__(pca, int(k))

    def captured_energy(self, delta: torch.Tensor) -> torch.Tensor:
        """Fraction of each delta's energy inside the ``2k`` sent axes → (N,) float32."""
        x = delta.reshape(delta.shape[0], -1) - self.pca.mean
        c = x @ self.pca.axes
        return c[:, : 2 * self.k].pow(2).sum(1) / c.pow(2).sum(1).clamp_min(1e-12)


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
