"""Seeded randomness: the only process-wide state in the package.

Every entry point takes a ``seed``; library functions take an explicit
:class:`torch.Generator` named ``rng`` so that results are reproducible on
CPU and independent of call order elsewhere.
"""

from __future__ import annotations

import random

import numpy as np
import torch

DEFAULT_SEED = 0


def make_generator(seed: int | None = DEFAULT_SEED, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a fresh :class:`torch.Generator` seeded with ``seed``.

    Parameters
    ----------
    seed : int or None
        Seed; ``None`` draws a non-deterministic seed.
    device : str or torch.device
        Device the generator produces numbers on.

    Returns
    -------
    torch.Generator
    """
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def seed_everything(seed: int = DEFAULT_SEED) -> None:
    """Seed Python, NumPy and torch's global generators (for scripts and training)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def numpy_rng(seed: int | None = DEFAULT_SEED) -> np.random.Generator:
    """Return a NumPy :class:`~numpy.random.Generator` seeded with ``seed``."""
    return np.random.default_rng(seed)


def derive_seed(seed: int, *keys: int | str) -> int:
    """Derive a child seed from ``seed`` and ``keys`` (stable across runs and platforms).

    Used to give each sample / shard / SNR point its own stream so that a
    resumed or sharded run draws exactly the same numbers as a single run.
    """
    import hashlib

    h = hashlib.sha256(str((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(h[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF
