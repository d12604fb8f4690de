"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator (seed 1234)."""
    return torch.Generator().manual_seed(1234)


def _with_one_torch_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch intra-op thread for a test (restored after): tiny problems only lose from threads on a shared CPU."""
    yield from _with_one_torch_thread()


@pytest.fixture(scope="module")
def one_torch_thread_module() -> Iterator[None]:
    """One torch intra-op thread for a whole test module (use ``pytestmark = pytest.mark.usefixtures(...)``)."""
    yield from _with_one_torch_thread()
