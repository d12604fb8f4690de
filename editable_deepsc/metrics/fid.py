"""Fréchet distance between image sets: standard Inception FID or the EfficientNet-Lite0 proxy.

FID (Heusel et al. 2017) fits a Gaussian to the features of each set and returns

    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

with sample covariances (``ddof=1``, as pytorch-fid). :func:`fid_from_stats`
computes the trace term from symmetric eigen-decompositions,
``tr((S_a S_b)^(1/2)) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2)))``, which is real
and stable for singular (rank-deficient) covariances, unlike a general sqrtm
whose result picks up spurious imaginary parts.

Feature extractors
------------------
* proxy (default offline): ``fid-proxy(effnet-lite0)`` -- the 1280-d pooled
  ImageNet EfficientNet-Lite0 features of images resized to 224 px. Values are
  not comparable with published FIDs; reports mark them as proxies.
* standard: the pytorch-fid Inception-v3 (2048-d pool features) from
  ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``; see
  :mod:`editable_deepsc.metrics.inception`.

With fewer samples than feature dimensions the covariances are singular and
FID is biased upwards; compare numbers only at equal sample counts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.metrics import inception
from editable_deepsc.metrics.features import DEFAULT_INPUT_SIZE, EfficientNetFeatures

PROXY_NAME = "fid-proxy(effnet-lite0)"
STANDARD_NAME = "fid(inception-v3)"
DEFAULT_BATCH_SIZE = 32


def feature_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance of a feature set.

    Parameters
    ----------
    features : array-like
        Shape (N, D), N >= 2.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Float64 mean (D,) and covariance (D, D) with ``ddof=1``.
    """
    f = _as_float64(features, "features")
    if f.shape[0] < 2:
        raise BadInput(f"FID needs at least 2 samples per set, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def _as_float64(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise BadInput(f"{name} must have shape (N, D), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise BadInput(f"{name} contains NaN or inf")
    return x


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) * 0.5)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def fid_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance between two Gaussians N(mu_a, cov_a) and N(mu_b, cov_b).

    Parameters
    ----------
    mu_a, mu_b : numpy.ndarray
        Means, shape (D,).
    cov_a, cov_b : numpy.ndarray
        Symmetric positive semi-definite covariances, shape (D, D).

    Returns
    -------
    float
        Non-negative distance (squared units of the features).
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise BadInput(f"shape mismatch: mu {mu_a.shape}/{mu_b.shape}, cov {cov_a.shape}/{cov_b.shape}")
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) * 0.5)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid_from_features(fa: np.ndarray | torch.Tensor, fb: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between two feature sets.

    Parameters
    ----------
    fa, fb : numpy.ndarray or torch.Tensor
        Shapes (N_a, D) and (N_b, D), N >= 2 each.

    Returns
    -------
    float
        FID of the Gaussians fitted to each set.
    """
    a, b = _as_float64(fa, "fa"), _as_float64(fb, "fb")
    if a.shape[1] != b.shape[1]:
        raise BadInput(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    return fid_from_stats(*feature_stats(a), *feature_stats(b))


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise BadInput(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        for i in range(0, images.shape[0], batch_size):
            yield images[i : i + batch_size]
    else:
        for batch in images:
            yield from _batches(batch, batch_size)


class FID:
    """FID metric: feature extraction plus the Fréchet distance.

    Parameters
    ----------
    prefer_standard : bool
        Use the pytorch-fid Inception-v3 when its weight file is in
        ``$TORCH_HOME/hub/checkpoints``; otherwise (or with ``False``) the
        EfficientNet-Lite0 proxy.
    proxy_input_size : int
        Side the proxy resizes images to (multiple of 32).

    Attributes
    ----------
    is_proxy : bool
    name : str
        ``"fid(inception-v3)"`` or ``"fid-proxy(effnet-lite0)"``.
    dim : int
        Feature dimension (2048 or 1280).

    Examples
    --------
    >>> fid = FID()
    >>> fa = fid.features(real_images)       # (N, 1280) float64
    >>> fb = fid.features(fake_images)
    >>> fid_from_features(fa, fb)
    """

    def __init__(self, prefer_standard: bool = True, proxy_input_size: int = DEFAULT_INPUT_SIZE):
        path = inception.fid_inception_path()
        self.is_proxy = not (prefer_standard and path is not None)
        self.name = PROXY_NAME if self.is_proxy else STANDARD_NAME
        self._inception_path = "" if path is None else str(path)
        self._proxy = EfficientNetFeatures(input_size=proxy_input_size) if self.is_proxy else None
        self.dim = 1280 if self.is_proxy else inception.FID_FEATURE_DIM

    def __repr__(self) -> str:
        return f"FID(name={self.name!r}, is_proxy={self.is_proxy})"

    def _extract(self, batch: torch.Tensor) -> torch.Tensor:
        if self.is_proxy:
            return self._proxy.pooled(batch)
        return inception.load_fid_inception(self._inception_path, str(batch.device))(batch.float())

    @torch.no_grad()
    def features(
        self, images: torch.Tensor | Iterable[torch.Tensor], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Extract features in batches (no gradients).

        Parameters
        ----------
        images : torch.Tensor or iterable of torch.Tensor
            Float (N, 3, H, W) in [-1, 1], or an iterable of such batches
            (e.g. a generator producing samples on the fly).
        batch_size : int
            Images per forward pass.

        Returns
        -------
        numpy.ndarray
            Float64 (N, dim).
        """
        if batch_size < 1:
            raise BadInput(f"batch_size must be >= 1, got {batch_size}")
        out = [self._extract(b).double().cpu().numpy() for b in _batches(images, batch_size)]
        if not out:
            raise BadInput("no images given")
        return np.concatenate(out, axis=0)

    def __call__(
        self,
        images_a: torch.Tensor | Iterable[torch.Tensor],
        images_b: torch.Tensor | Iterable[torch.Tensor],
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> float:
        """FID between two image sets (see :meth:`features`)."""
        return fid_from_features(self.features(images_a, batch_size), self.features(images_b, batch_size))
