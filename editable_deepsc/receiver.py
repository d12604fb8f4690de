"""The receiver: channel decoder (full latents and follow-up deltas) and generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from editable_deepsc.channel.codec import SemanticCodec
    from editable_deepsc.channel.delta import DeltaCodec


class Receiver:
    """Channel decoder and generator.

    Parameters
    ----------
    generator : StyleGenerator
    codec : SemanticCodec
        Channel decoder (its ``decode`` half).
    delta : DeltaCodec or None
        Follow-up turn decoder.
    """

    def __init__(self, generator, codec: SemanticCodec, delta: DeltaCodec | None):
        self.generator, self.codec, self.delta = generator, codec, delta

    @torch.no_grad()
    def decode(self, y: torch.Tensor, snr_rx_db: torch.Tensor) -> torch.Tensor:
        """Equalised symbols (N, k) complex64 + receiver SNR (N,) dB → W+ (N, num_ws, w_dim)."""
        return self.codec.decode(y, snr_rx_db)

    @torch.no_grad()
    def decode_delta(self, y: torch.Tensor, snr_rx_db: torch.Tensor, snr_db: float) -> torch.Tensor:
        """Follow-up symbols (N, delta_k) at received SNR ``snr_rx_db`` (nominal ``snr_db``) → LMMSE delta
        estimate (N, num_ws, w_dim)."""
        return self.delta.decode(y, snr_rx_db, snr_db)

    @torch.no_grad()
    def synthesise(self, w: torch.Tensor) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) → images (N, 3, R, R) float32 in [-1, 1]."""
        return self.generator.synthesis(w).clamp(-1, 1)


__all__ = ["Receiver"]
