"""Statistics of W+ latents: mean and principal axes, used to whiten what the codecs send.

Latents inverted into W+ are strongly redundant (per-layer styles stay close to
a shared w), so most of their energy lies in few principal directions. Both
the learned semantic codec and the uncoded PCA baseline work in this basis.
"""

from __future__ import annotations

import torch
from torch import nn


class LatentBasis(nn.Module):
    """What every latent basis offers, given its :meth:`rotate` / :meth:`unrotate` and buffers
    ``mean`` (D,) and ``std`` (D,) (coordinates by decreasing variance).

    Subclasses: :class:`LatentPCA` (full axes) and
    :class:`~editable_deepsc.channel.separable_pca.SeparableLatentPCA` (separable axes, large W+).
    """

    num_ws: int
    w_dim: int

    @property
    def dim(self) -> int:
        return self.num_ws * self.w_dim

    def rotate(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def unrotate(self, c: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _centred(self, w_plus: torch.Tensor) -> torch.Tensor:
        return w_plus.reshape(w_plus.shape[0], -1) - self.mean

    def _uncentred(self, x: torch.Tensor) -> torch.Tensor:
        return (x.reshape(x.shape[0], -1) + self.mean).view(x.shape[0], self.num_ws, self.w_dim)

    def whiten(self, w_plus: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) → (N, D) coordinates along the principal axes, unit variance each."""
        return self.rotate(self._centred(w_plus)) / self.std

    def unwhiten(self, u: torch.Tensor) -> torch.Tensor:
        """(N, D) whitened coordinates → (N, num_ws, w_dim) latents (inverse of :meth:`whiten`)."""
        return self._uncentred(self.unrotate(u * self.std))

    @property
    def scale(self) -> torch.Tensor:
        """Global scale: root mean variance per coordinate (so :meth:`project` has unit mean variance)."""
        return self.std.pow(2).mean().sqrt()

    def project(self, w_plus: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) → (N, D): coordinates along the principal axes, one global scale.

        Unlike :meth:`whiten`, strong axes stay strong, so a network or a loss
        on these coordinates weighs each direction by how much it varies.
        """
        return self.rotate(self._centred(w_plus)) / self.scale

    def unproject(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`project`."""
        return self._uncentred(self.unrotate(u * self.scale))

    def nmse(self, w_hat: torch.Tensor, w_plus: torch.Tensor) -> torch.Tensor:
        """Normalised squared error per sample, ``‖ŵ − w‖² / E‖w − mean‖²`` → (N,)."""
        err = (w_hat - w_plus).reshape(w_plus.shape[0], -1).pow(2).sum(1)
        return err / self.std.pow(2).sum()

    def explained_variance(self, n: int) -> float:
        """Fraction of total latent variance in the first ``n`` coordinates."""
        v = self.std.double() ** 2
        return float(v[:n].sum() / v.sum())


class LatentPCA(LatentBasis):
    """Mean, principal axes and per-axis standard deviations of flattened W+ latents.

    Parameters
    ----------
    num_ws, w_dim : int
        Latent shape; the flattened dimension is ``D = num_ws * w_dim``.

    Buffers
    -------
    mean : float32 (D,)
    axes : float32 (D, D)
        Columns are principal directions, by decreasing variance.
    std : float32 (D,)
        Standard deviation along each axis.
    """

    def __init__(self, num_ws: int, w_dim: int):
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        d = num_ws * w_dim
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("axes", torch.eye(d))
        self.register_buffer("std", torch.ones(d))

    @classmethod
    def from_card(cls, card, state: dict[str, torch.Tensor]) -> "LatentPCA":
        """Zoo builder of kind ``delta-statistics``: latent shape from the card (or the file's metadata);
        a card or file whose ``basis`` is ``separable`` gives a
        :class:`~editable_deepsc.channel.separable_pca.SeparableLatentPCA`."""
        from editable_deepsc.errors import CheckpointError
        from editable_deepsc.zoo.loader import fit_state
        from editable_deepsc.zoo.registry import file_metadata

        shape = card.config if "num_ws" in card.config else file_metadata(card.path)
        if shape.get("basis") == "separable":
            from editable_deepsc.channel.separable_pca import SeparableLatentPCA

            cls = SeparableLatentPCA  # a large W+ (ffhq): the separable basis
        try:
            pca = cls(int(shape["num_ws"]), int(shape["w_dim"]))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{card.name}: no latent shape (num_ws, w_dim) on its card") from None
        return fit_state(pca, state, f"statistics {card.name}").eval()

    @torch.no_grad()
    def fit(self, w_plus: torch.Tensor, eps: float = 1e-6) -> "LatentPCA":
        """Estimate the statistics from latents ``w_plus`` (M, num_ws, w_dim), M ≥ 2.

        Returns ``self``.
        """
        x = w_plus.reshape(w_plus.shape[0], -1).double()
        mean = x.mean(0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        d = self.dim
        axes = torch.zeros(d, d, dtype=torch.float64)
        r = vh.shape[0]
        axes[:, :r] = vh.T
        if r < d:  # complete the basis for rank-deficient samples (M < D)
            q, _ = torch.linalg.qr(torch.cat([vh.T, torch.randn(d, d - r, dtype=torch.float64,
                                                                generator=torch.Generator().manual_seed(0))], 1))
            axes[:, r:] = q[:, r:]
        std = torch.zeros(d, dtype=torch.float64)
        std[:r] = s / (x.shape[0] - 1) ** 0.5
        self.mean.copy_(mean.float())
        self.axes.copy_(axes.float())
        self.std.copy_(std.clamp_min(eps).float())
        return self

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) → (N, D): coordinates along the principal axes, no mean removed, unscaled
        (for differences of latents, e.g. edit deltas)."""
        return x.reshape(x.shape[0], -1) @ self.axes

    def unrotate(self, c: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`rotate`: (N, D) → (N, num_ws, w_dim)."""
        return (c @ self.axes.T).view(c.shape[0], self.num_ws, self.w_dim)

    def axes_columns(self, m: int) -> torch.Tensor:
        """The first ``m`` principal axes as columns, (D, m) float32 orthonormal."""
        return self.axes[:, :m].detach().clone()
