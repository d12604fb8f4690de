"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator (seed 1234)."""
    return torch.Generator().manual_seed(1234)
