"""Separable principal axes of W+ latents: one basis across styles, one across channels.

A full PCA of the FFHQ generator's W+ (23 styles × 512 channels = 11,776
coordinates) needs an 11,776² basis (554 MB) and more latents than an
inversion pool holds. W+ has structure a separable transform can use, as
the 2-D KLT of image coding does for rows and columns: inverted latents stay
close to one shared ``w`` (the same row in every style), and what varies
across styles is a few smooth patterns. :class:`SeparableLatentPCA` centres
a latent ``X`` (num_ws, w_dim) and takes ``C = Lᵀ X R`` with ``L``
(num_ws × num_ws) the eigenvectors of the covariance across styles and ``R``
(w_dim × w_dim) those across channels. The coefficients are then ordered by
their measured variance, so the first ``n`` carry the most energy. It has the
same interface as :class:`~editable_deepsc.channel.latent_pca.LatentPCA`
(``project``/``unproject``, ``whiten``/``unwhiten``, ``std``, ``scale``,
``nmse``), without an explicit ``axes`` matrix, at 0.3 M numbers for the
FFHQ W+.
"""

from __future__ import annotations

import torch

from editable_deepsc.channel.latent_pca import LatentBasis


class SeparableLatentPCA(LatentBasis):
    """Mean, separable principal axes and per-coefficient spreads of W+ latents.

    Parameters
    ----------
    num_ws, w_dim : int
        Latent shape; the flattened dimension is ``D = num_ws * w_dim``.

    Buffers
    -------
    mean : float32 (D,)
    left : float32 (num_ws, num_ws)
        Columns: principal directions across styles.
    right : float32 (w_dim, w_dim)
        Columns: principal directions across channels.
    order : int64 (D,)
        Flat indices of the coefficients ``(Lᵀ X R).flatten()`` by decreasing variance.
    std : float32 (D,)
        Standard deviation of each coefficient, in that order.
    """

    def __init__(self, num_ws: int, w_dim: int):
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        d = num_ws * w_dim
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("left", torch.eye(num_ws))
        self.register_buffer("right", torch.eye(w_dim))
        self.register_buffer("order", torch.arange(d))
        self.register_buffer("std", torch.ones(d))

    @torch.no_grad()
    def fit(self, w_plus: torch.Tensor, eps: float = 1e-6, chunk: int = 1024) -> "SeparableLatentPCA":
        """Estimate the statistics from latents ``w_plus`` (M, num_ws, w_dim), M ≥ 2; returns ``self``.

        The two bases are the eigenvectors of the style and channel covariances
        ``E[X Xᵀ]`` and ``E[Xᵀ X]`` of the centred latents; the coefficient
        variances are then measured on the same latents (in chunks of ``chunk``).
        """
        m = w_plus.shape[0]
        if m < 2:
            raise ValueError(f"fitting needs at least 2 latents, got {m}")
        mean = w_plus.reshape(m, -1).double().mean(0)
        cov_l = torch.zeros(self.num_ws, self.num_ws, dtype=torch.float64)
        cov_r = torch.zeros(self.w_dim, self.w_dim, dtype=torch.float64)
        for c in w_plus.split(chunk):
            x = c.reshape(c.shape[0], -1).double() - mean
            x = x.view(-1, self.num_ws, self.w_dim)
            cov_l += torch.einsum("nlc,nmc->lm", x, x)
            cov_r += torch.einsum("nlc,nld->cd", x, x)
        left = _descending_eigenvectors(cov_l)
        right = _descending_eigenvectors(cov_r)
        var = torch.zeros(self.dim, dtype=torch.float64)
        for c in w_plus.split(chunk):
            x = (c.reshape(c.shape[0], -1).double() - mean).view(-1, self.num_ws, self.w_dim)
            var += (left.T @ x @ right).reshape(x.shape[0], -1).pow(2).sum(0)
        var /= m - 1
        order = torch.argsort(var, descending=True)
        self.mean.copy_(mean.float())
        self.left.copy_(left.float())
        self.right.copy_(right.float())
        self.order.copy_(order)
        self.std.copy_(var[order].sqrt().clamp_min(eps).float())
        return self

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) → (N, D): coefficients ``Lᵀ X R`` in variance order, no mean removed,
        unscaled (for differences of latents, e.g. edit deltas)."""
        x = x.reshape(x.shape[0], self.num_ws, self.w_dim)
        return (self.left.T @ x @ self.right).reshape(x.shape[0], -1)[:, self.order]

    def unrotate(self, c: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`rotate`: (N, D) → (N, num_ws, w_dim)."""
        flat = torch.zeros_like(c).index_copy(1, self.order, c)
        return (self.left @ flat.view(-1, self.num_ws, self.w_dim) @ self.right.T).contiguous()

    def axes_columns(self, m: int) -> torch.Tensor:
        """The first ``m`` axes (in variance order) as explicit columns ``vec(l_a r_bᵀ)``, (D, m) float32."""
        a, b = self.order[:m] // self.w_dim, self.order[:m] % self.w_dim
        return (self.left[:, a].T[:, :, None] * self.right[:, b].T[:, None, :]).reshape(m, -1).T.contiguous()


def _descending_eigenvectors(cov: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of a symmetric matrix as columns, by decreasing eigenvalue, signs fixed (largest entry > 0)."""
    _, vec = torch.linalg.eigh(cov)
    vec = vec.flip(1)
    sign = torch.sign(vec.gather(0, vec.abs().argmax(0, keepdim=True)))
    return vec * torch.where(sign == 0, torch.ones_like(sign), sign)
