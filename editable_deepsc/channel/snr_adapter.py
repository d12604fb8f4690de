"""SNR conditioning: a small adapter that lets one codec serve every SNR (journal version of the paper)."""

from __future__ import annotations

import torch
from torch import nn

SNR_CENTER_DB = 10.0
SNR_SCALE_DB = 10.0


class SNRAdapter(nn.Module):
    """Feature-wise affine modulation (FiLM) of hidden features by the channel SNR.

    ``h ↦ h · (1 + γ(snr)) + β(snr)`` with γ, β from a tiny MLP of the normalised
    SNR; initialised to the identity so an untrained adapter changes nothing.

    Parameters
    ----------
    width : int
        Number of features of the modulated layer.
    hidden : int
        Width of the adapter MLP.
    """

    def __init__(self, width: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 2 * width))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, h: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """Modulate ``h`` (N, width) by ``snr_db`` (N,) → (N, width)."""
        s = ((snr_db.float() - SNR_CENTER_DB) / SNR_SCALE_DB).view(-1, 1)
        gamma, beta = self.net(s).chunk(2, dim=1)
        return h * (1.0 + gamma) + beta
