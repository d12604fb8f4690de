"""Semantic channel codec: W+ latent ⇄ k complex channel symbols (analog JSCC, SNR-aware).

The transmitter's channel encoder maps the (edited) latent to a block of ``k``
complex symbols with unit average power; the receiver's channel decoder maps the
noisy, equalised symbols back to a latent for the generator. Both ends are told
the SNR (for Rayleigh with a known gain, the receiver uses the instantaneous
SNR ``|h|²/no``) and adapt through :class:`~editable_deepsc.channel.snr_adapter.SNRAdapter`
layers, so one model serves SNR ∈ [0, 20] dB.

The latent is first rotated onto its principal axes (:class:`LatentPCA`, or
for a large W+ such as the FFHQ generator's 23 × 512 the separable
:class:`~editable_deepsc.channel.separable_pca.SeparableLatentPCA`), which
exposes the redundancy of W+ (inverted latents stay close to W). A codec may
look at only the ``keep`` strongest coordinates (``CodecConfig.keep``); the
others are decoded at their mean.

Each side is a linear path plus an SNR-conditioned MLP residual
(``linear_skip=True``), and one symbol carries the block's gain.
:meth:`SemanticCodec.init_from_pca` sets the linear paths to the uncoded PCA
baseline (top whitened components out, LMMSE-like shrinkage back), so training starts from that scheme and only has to
learn what beats it: power allocation across components, an SNR-dependent
decoder, and the nonlinear corrections the image loss asks for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.link import pass_channel
from editable_deepsc.channel.power import complex_to_real, normalize_power, real_to_complex
from editable_deepsc.channel.separable_pca import SeparableLatentPCA
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
    linear_skip : bool
        Add a linear path beside each MLP, modulated per component by an SNR
        adapter, and send the block's scale in the last symbol (needs k >= 2).
    basis : {"full", "separable"}
        Latent statistics: a full PCA (:class:`LatentPCA`, D² numbers) or the
        separable one (:class:`SeparableLatentPCA`, for large W+).
    keep : int
        Strongest coordinates the networks see and the decoder returns
        (0: all ``num_ws·w_dim``); the rest are decoded at their mean.
    diagonal : bool
        Linear paths as per-coordinate gains (power allocation over the
        decorrelated coordinates) instead of full matrices.
    """

    num_ws: int
    w_dim: int
    k: int
    hidden: int = 512
    depth: int = 2
    snr_aware: bool = True
    linear_skip: bool = True
    basis: str = "full"
    keep: int = 0
    diagonal: bool = False

    @property
    def dim(self) -> int:
        """Flattened latent dimension ``num_ws·w_dim``."""
        return self.num_ws * self.w_dim

    @property
    def coords(self) -> int:
        """Coordinates the networks see (``keep``, or all of them)."""
        return self.keep or self.dim

    def to_json(self) -> dict:
        return asdict(self)


class DiagonalMap(nn.Module):
    """Per-coordinate gains between ``n_in`` and ``n_out`` features: ``y[:, i] = g_i x[:, i]`` for
    ``i < min(n_in, n_out)``, zero beyond (a diagonal, possibly rectangular, linear map).

    ``weight`` (min(n_in, n_out),) float32.
    """

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.in_features, self.out_features = n_in, n_out
        self.weight = nn.Parameter(torch.ones(min(n_in, n_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.weight.shape[0]
        y = x[:, :m] * self.weight
        if self.out_features > m:
            y = torch.cat([y, y.new_zeros(y.shape[0], self.out_features - m)], dim=1)
        return y


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

    With ``linear_skip`` (the default) the encoder output for the first
    ``k - 1`` symbols is ``z = A(snr)·P u + MLP(u, snr)`` (``u`` the projected
    PCA coordinates, ``P`` a learned linear map, ``A`` a per-component SNR
    gain); ``z`` is scaled to unit power, and its log-RMS -- which the per-sample
    power normalisation would otherwise destroy, and which differs a lot between,
    say, an unmixed and a style-mixed latent -- is sent as the ``k``-th symbol
    (``tanh`` of the calibrated log-RMS on both I and Q, power ≤ 1). The decoder
    restores the scale from that symbol (shrunk towards its mean at low SNR)
    and returns ``u = B(snr)·Q r + MLP(r, snr)``.

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
        if config.basis not in ("full", "separable"):
            raise ValueError(f"unknown latent basis {config.basis!r} (full, separable)")
        if not 0 <= config.keep <= config.dim:
            raise ValueError(f"keep={config.keep} must lie in [0, {config.dim}]")
        d = config.coords
        basis = SeparableLatentPCA if config.basis == "separable" else LatentPCA
        self.pca = basis(config.num_ws, config.w_dim)
        skip = config.linear_skip
        n_main = 2 * (config.k - 1) if skip else 2 * config.k
        if skip and config.k < 2:
            raise ValueError("a codec with linear_skip needs k >= 2 (one symbol carries the scale)")
        self.encoder = _MLP(d, n_main, config.hidden, config.depth, config.snr_aware)
        self.decoder = _MLP(2 * config.k, d, config.hidden, config.depth, config.snr_aware)
        if skip:
            linear = DiagonalMap if config.diagonal else (lambda a, b: nn.Linear(a, b, bias=False))
            self.enc_linear = linear(d, n_main)
            self.enc_gain = SNRAdapter(n_main)
            self.dec_linear = linear(n_main, d)
            self.dec_gain = SNRAdapter(d)
            # calibration of the scale symbol: t = tanh((log rms - shift) * gain), E[t^2] = t_var
            self.register_buffer("scale_shift", torch.zeros(()))
            self.register_buffer("scale_gain", torch.ones(()))
            self.register_buffer("scale_var", torch.full((), 0.25))
            with torch.no_grad():  # residual MLPs start small: the linear path dominates
                for mlp in (self.encoder, self.decoder):
                    mlp.out.weight.mul_(0.1)
                    mlp.out.bias.zero_()
        else:
            self.enc_linear = self.enc_gain = self.dec_linear = self.dec_gain = None

    @property
    def k(self) -> int:
        return self.config.k

    @torch.no_grad()
    def init_from_pca(self, w_plus: torch.Tensor | None = None) -> "SemanticCodec":
        """Set the linear paths to the uncoded PCA scheme (call after ``pca.fit``); returns ``self``.

        Encoder: the top ``2(k-1)`` principal coordinates, whitened. Decoder:
        the inverse scaling, shrunk by 1/(1 + no) at the adapters' reference
        SNR of 10 dB (the SNR adapters learn the rest). With latents ``w_plus``
        (M, num_ws, w_dim) the scale symbol is calibrated on them.
        """
        if self.enc_linear is None:
            return self
        n = min(self.enc_linear.out_features, self.config.coords)
        rel = (self.pca.std / self.pca.scale)[:n]  # std of each projected coordinate
        if self.config.diagonal:
            self.enc_linear.weight.zero_()[:n] = 1.0 / rel
            self.dec_linear.weight.zero_()[:n] = rel / (1.0 + snr_to_no(10.0))
        else:
            self.enc_linear.weight.zero_()
            self.dec_linear.weight.zero_()
            idx = torch.arange(n)
            self.enc_linear.weight[idx, idx] = 1.0 / rel
            self.dec_linear.weight[idx, idx] = rel / (1.0 + snr_to_no(10.0))
        if w_plus is not None:
            z = self._enc_main(self.coordinates(w_plus), torch.full((w_plus.shape[0],), 10.0))
            log_rms = self._log_rms(z)
            self.scale_shift.copy_(log_rms.mean())
            self.scale_gain.copy_(0.5 / log_rms.std().clamp_min(1e-3))
            self.scale_var.copy_(torch.tanh((log_rms - self.scale_shift) * self.scale_gain).pow(2).mean())
        return self

    def coordinates(self, w_plus: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) → (N, coords): the projected coordinates the networks see."""
        u = self.pca.project(w_plus)
        return u[:, : self.config.keep] if self.config.keep else u

    def latents(self, u: torch.Tensor, whitened: bool = False) -> torch.Tensor:
        """(N, coords) projected (or ``whitened``) coordinates → (N, num_ws, w_dim); those not kept at their mean."""
        if self.config.keep and self.config.keep < self.config.dim:
            u = torch.cat([u, u.new_zeros(u.shape[0], self.config.dim - self.config.keep)], dim=1)
        return self.pca.unwhiten(u) if whitened else self.pca.unproject(u)

    @staticmethod
    def _snr(snr_db: float | torch.Tensor, n: int) -> torch.Tensor:
        s = torch.as_tensor(snr_db, dtype=torch.float32)
        return s.expand(n) if s.dim() == 0 else s.reshape(n)

    @staticmethod
    def _log_rms(z: torch.Tensor) -> torch.Tensor:
        """log of the RMS per complex symbol of real-packed ``z`` (N, 2m) → (N,)."""
        return 0.5 * torch.log(z.pow(2).sum(1) * (2.0 / z.shape[1]) + 1e-12)

    def _enc_main(self, u: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        return self.encoder(u, snr) + self.enc_gain(self.enc_linear(u), snr)

    def encode(self, w_plus: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Latents (N, num_ws, w_dim) float32 → channel symbols (N, k) complex64, unit average power."""
        u = self.coordinates(w_plus)
        snr = self._snr(snr_db, u.shape[0])
        if self.enc_linear is None:
            return normalize_power(real_to_complex(self.encoder(u, snr)))
        z = self._enc_main(u, snr)
        log_rms = self._log_rms(z)
        x_main = real_to_complex(z * torch.exp(-log_rms)[:, None])  # unit power per symbol
        t = torch.tanh((log_rms - self.scale_shift) * self.scale_gain)
        x_scale = torch.complex(t, t) / math.sqrt(2.0)
        return normalize_power(torch.cat([x_main, x_scale[:, None]], dim=1))

    def decode(self, y: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Equalised received symbols (N, k) complex64 → latents (N, num_ws, w_dim) float32."""
        snr = self._snr(snr_db, y.shape[0])
        r = complex_to_real(y) * math.sqrt(2.0)  # unit variance per real component
        u = self.decoder(r, snr)
        if self.dec_linear is None:
            return self.latents(u, whitened=True)
        k = self.k
        # scale symbol: (I + Q)/sqrt(2) = alpha * t, noise variance no/2; LMMSE shrink towards 0
        no = snr_to_no(snr.clamp(-30.0, 60.0))
        t_raw = (y[:, -1].real + y[:, -1].imag) / math.sqrt(2.0)
        t_hat = (t_raw * self.scale_var / (self.scale_var + no / 2.0)).clamp(-0.99, 0.99)
        alpha = torch.sqrt(k / (k - 1 + t_hat.pow(2)))
        log_rms = torch.atanh(t_hat) / self.scale_gain + self.scale_shift
        r_main = complex_to_real(y[:, :-1]) * (torch.exp(log_rms) / alpha)[:, None]
        u = u + self.dec_gain(self.dec_linear(r_main), snr)
        return self.latents(u)

    def forward(
        self,
        w_plus: torch.Tensor,
        channel: nn.Module,
        snr_db: float | torch.Tensor,
        rng: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encode, pass through ``channel`` at ``snr_db`` (scalar or (N,)), decode. Differentiable.

        Returns
        -------
        Tensor, float32, shape (N, num_ws, w_dim)
        """
        n = w_plus.shape[0]
        snr = self._snr(snr_db, n)
        x = self.encode(w_plus, snr)
        y, snr_rx = transmit_symbols(x, channel, snr, rng)
        return self.decode(y, snr_rx)


def transmit_symbols(
    x: torch.Tensor, channel: nn.Module, snr_db: torch.Tensor, rng: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Send symbols (N, k) through ``channel`` at per-sample SNR ``snr_db`` (N,).

    Returns
    -------
    y : Tensor, complex64, shape (N, k)
        Received (equalised, for Rayleigh) symbols.
    snr_rx : Tensor, float32, shape (N,)
        SNR the receiver should assume, the instantaneous ``snr_db + 10·log10(mean |h|²)``
        (the receiver knows ``h``; ``h = 1`` for AWGN, so there it is ``snr_db``).
    """
    y, _, snr_rx = pass_channel(x, channel, snr_db, rng)
    return y, snr_rx


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

    def forward(self, w_plus, channel, snr_db, rng=None):
        n = w_plus.shape[0]
        snr = SemanticCodec._snr(snr_db, n)
        y, snr_rx = transmit_symbols(self.encode(w_plus), channel, snr, rng)
        return self.decode(y, snr_rx)
