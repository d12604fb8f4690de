"""Semantic channel codec: W+ latent ⇄ k complex channel symbols (analog JSCC, SNR-aware).

The transmitter's channel encoder maps the (edited) latent to a block of ``k``
complex symbols with unit average power; the receiver's channel decoder maps the
noisy, equalised symbols back to a latent for the generator. Both ends are told
the SNR (for Rayleigh with a known gain, the receiver uses the instantaneous
SNR ``|h|²/no``) and adapt through :class:`~editable_deepsc.channel.snr_adapter.SNRAdapter`
layers, so one model serves SNR ∈ [0, 20] dB.

The latent is first rotated onto its principal axes (:class:`LatentPCA`),
which exposes the redundancy of W+ (inverted latents stay close to W).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.power import complex_to_real, normalize_power, real_to_complex
from editable_deepsc.channel.rayleigh import RayleighBlockFading
from editable_deepsc.channel.snr import snr_to_no
from editable_deepsc.channel.snr_adapter import SNRAdapter


@dataclass(frozen=True)
class CodecConfig:
    """Shape of a semantic codec.

    Parameters
    ----------
    num_ws, w_dim : int
        Latent shape (N, num_ws, w_dim) of the generator it serves.
    k : int
        Complex channel uses per latent.
    hidden : int
        Width of the hidden layers.
    depth : int
        Hidden layers on each side.
    snr_aware : bool
        Condition both ends on the SNR.
    """

    num_ws: int
    w_dim: int
    k: int
    hidden: int = 512
    depth: int = 2
    snr_aware: bool = True

    def to_json(self) -> dict:
        return asdict(self)


class _MLP(nn.Module):
    """Linear → (GELU → SNR FiLM → Linear)×depth with an SNR adapter on every hidden layer."""

    def __init__(self, d_in: int, d_out: int, hidden: int, depth: int, snr_aware: bool):
        super().__init__()
        dims = [d_in] + [hidden] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.adapters = nn.ModuleList(SNRAdapter(hidden) for _ in range(depth)) if snr_aware else None
        self.out = nn.Linear(hidden, d_out)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = self.act(layer(x))
            if self.adapters is not None:
                x = self.adapters[i](x, snr_db)
        return self.out(x)


class SemanticCodec(nn.Module):
    """Learned channel encoder/decoder for W+ latents.

    Parameters
    ----------
    config : CodecConfig

    Examples
    --------
    >>> codec = SemanticCodec(CodecConfig(num_ws=8, w_dim=128, k=64))
    >>> x = codec.encode(w_plus, snr_db=torch.full((n,), 6.0))      # (n, 64) complex64
    >>> w_hat = codec.decode(y, snr_db=torch.full((n,), 6.0))       # (n, 8, 128)
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        d = config.num_ws * config.w_dim
        self.pca = LatentPCA(config.num_ws, config.w_dim)
        self.encoder = _MLP(d, 2 * config.k, config.hidden, config.depth, config.snr_aware)
        self.decoder = _MLP(2 * config.k, d, config.hidden, config.depth, config.snr_aware)

    @property
    def k(self) -> int:
        return self.config.k

    @staticmethod
    def _snr(snr_db: float | torch.Tensor, n: int) -> torch.Tensor:
        s = torch.as_tensor(snr_db, dtype=torch.float32)
        return s.expand(n) if s.dim() == 0 else s.reshape(n)

    def encode(self, w_plus: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Latents (N, num_ws, w_dim) float32 → channel symbols (N, k) complex64, unit average power."""
        u = self.pca.project(w_plus)
        z = self.encoder(u, self._snr(snr_db, u.shape[0]))
        return normalize_power(real_to_complex(z))

    def decode(self, y: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Equalised received symbols (N, k) complex64 → latents (N, num_ws, w_dim) float32."""
        u = self.decoder(complex_to_real(y), self._snr(snr_db, y.shape[0]))
        return self.pca.unwhiten(u)

    def forward(
        self,
        w_plus: torch.Tensor,
        channel: nn.Module,
        snr_db: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encode, pass through ``channel`` at ``snr_db`` (scalar or (N,)), decode. Differentiable.

        Returns
        -------
        Tensor, float32, shape (N, num_ws, w_dim)
        """
        n = w_plus.shape[0]
        snr = self._snr(snr_db, n)
        x = self.encode(w_plus, snr)
        y, snr_rx = transmit_symbols(x, channel, snr, generator)
        return self.decode(y, snr_rx)


def transmit_symbols(
    x: torch.Tensor, channel: nn.Module, snr_db: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Send symbols (N, k) through ``channel`` at per-sample SNR ``snr_db`` (N,).

    Returns
    -------
    y : Tensor, complex64, shape (N, k)
        Received (equalised, for Rayleigh) symbols.
    snr_rx : Tensor, float32, shape (N,)
        SNR the receiver should assume: ``snr_db`` for AWGN; for Rayleigh the
        instantaneous ``snr_db + 10·log10(mean |h|²)`` (the receiver knows ``h``).
    """
    no = snr_to_no(snr_db).view(-1, 1)
    if isinstance(channel, RayleighBlockFading):
        y, h = channel(x, no, generator=generator, return_h=True)
        gain = h.abs().pow(2).mean(dim=1).clamp_min(1e-6)
        return y, snr_db + 10.0 * torch.log10(gain)
    return channel(x, no, generator=generator), snr_db


class PCAUncodedCodec(nn.Module):
    """Baseline: send the top-2k whitened principal components of the latent uncoded.

    The first ``2k`` whitened PCA coordinates (unit variance each) are paired
    into ``k`` complex symbols and scaled by ``1/√2``, so the expected symbol
    power is 1 without per-sample side information. Each real component then
    has signal variance 1/2 and noise variance ``no/2``, and the receiver applies
    the LMMSE gain ``1/(1 + no)``; the components not sent are set to their mean.

    Parameters
    ----------
    pca : LatentPCA
        Fitted latent statistics.
    k : int
        Complex channel uses.
    """

    def __init__(self, pca: LatentPCA, k: int):
        super().__init__()
        if 2 * k > pca.dim:
            raise ValueError(f"k={k} needs {2 * k} components but the latent has only {pca.dim}")
        self.pca, self.k = pca, k

    def encode(self, w_plus: torch.Tensor, snr_db: float | torch.Tensor | None = None) -> torch.Tensor:
        u = self.pca.whiten(w_plus)[:, : 2 * self.k]
        return real_to_complex(u) / math.sqrt(2.0)

    def decode(self, y: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        no = snr_to_no(torch.as_tensor(snr_db, dtype=torch.float32)).reshape(-1, 1)
        gain = 1.0 / (1.0 + no)  # LMMSE for a unit-power Gaussian symbol in CN(0, no)
        u_head = complex_to_real(y * gain) * math.sqrt(2.0)
        u = torch.zeros(y.shape[0], self.pca.dim, dtype=u_head.dtype)
        u[:, : 2 * self.k] = u_head
        return self.pca.unwhiten(u)

    def forward(self, w_plus, channel, snr_db, generator=None):
        n = w_plus.shape[0]
        snr = SemanticCodec._snr(snr_db, n)
        y, snr_rx = transmit_symbols(self.encode(w_plus), channel, snr, generator)
        return self.decode(y, snr_rx)
