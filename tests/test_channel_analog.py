"""Statistical and functional tests of the analog channel models (AWGN, Rayleigh, power, SNR)."""

from __future__ import annotations

import math

import pytest
import torch

from editable_deepsc.channel import (
    AWGN,
    RayleighBlockFading,
    average_power,
    check_snr,
    complex_to_real,
    ebno_to_no,
    make_channel,
    normalize_power,
    real_to_complex,
    snr_to_no,
)
from editable_deepsc.errors import BadInput

N_SYMBOLS = 1_000_000


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 6.0, 20.0])
def test_awgn_empirical_noise_power_within_2_percent(snr_db, gen):
    x = normalize_power(torch.randn(4, N_SYMBOLS // 4, dtype=torch.complex64, generator=gen))
    no = snr_to_no(snr_db)
    n = AWGN()(x, no, rng=gen) - x
    measured = n.abs().pow(2).mean().item()
    assert abs(measured / no - 1.0) < 0.02
    # circular symmetry: real and imaginary parts each carry half the power, uncorrelated
    assert abs(n.real.pow(2).mean().item() / (no / 2) - 1.0) < 0.02
    assert abs(n.imag.pow(2).mean().item() / (no / 2) - 1.0) < 0.02
    assert abs((n.real * n.imag).mean().item()) < 0.01 * no


def test_awgn_per_sample_snr_broadcasts(gen):
    x = torch.zeros(2, 200_000, dtype=torch.complex64)
    no = snr_to_no(torch.tensor([[0.0], [10.0]]))
    y = AWGN()(x, no, rng=gen)
    p = average_power(y)
    assert torch.allclose(p, no.squeeze(1), rtol=0.02)


def test_power_normalisation_unit_power_and_differentiable(gen):
    raw = torch.randn(8, 64, dtype=torch.complex64, generator=gen) * torch.linspace(0.1, 10, 8).view(8, 1)
    raw.requires_grad_(True)
    x = normalize_power(raw)
    assert torch.allclose(average_power(x), torch.ones(8), atol=1e-5)
    y = AWGN()(x, 0.1, rng=gen)
    y.abs().pow(2).sum().backward()
    assert raw.grad is not None and torch.isfinite(raw.grad.abs()).all()
    assert raw.grad.abs().sum() > 0


def test_seeded_channels_are_reproducible():
    x = normalize_power(torch.randn(3, 100, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)))
    for ch in (AWGN(), RayleighBlockFading(block_length=10)):
        a = ch(x, 0.5, rng=torch.Generator().manual_seed(7))
        b = ch(x, 0.5, rng=torch.Generator().manual_seed(7))
        c = ch(x, 0.5, rng=torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_rayleigh_gain_statistics_and_block_structure(gen):
    fading = RayleighBlockFading(block_length=16)
    h = fading.generate(2000, 64, rng=gen)
    assert h.shape == (2000, 64) and h.dtype == torch.complex64
    blocks = h.view(2000, 4, 16)
    assert torch.equal(blocks, blocks[:, :, :1].expand_as(blocks))  # constant within a block
    g = blocks[:, :, 0].flatten()
    assert abs(g.abs().pow(2).mean().item() - 1.0) < 0.03  # E|h|^2 = 1
    # |h|^2 is exponential(1): P(|h|^2 < 0.1) = 1 - exp(-0.1)
    assert abs((g.abs().pow(2) < 0.1).float().mean().item() - (1 - math.exp(-0.1))) < 0.01
    assert not torch.equal(blocks[:, 0, 0], blocks[:, 1, 0])  # independent blocks


def test_rayleigh_default_block_is_whole_sample(gen):
    h = RayleighBlockFading().generate(3, 50, rng=gen)
    assert torch.equal(h, h[:, :1].expand_as(h))


def test_rayleigh_equalisation_noiseless_recovers_input_and_returns_h(gen):
    x = normalize_power(torch.randn(5, 40, dtype=torch.complex64, generator=gen))
    y, h = RayleighBlockFading(block_length=8)(x, 0.0, rng=gen, return_h=True)
    assert torch.allclose(y, x, atol=1e-5)
    raw = RayleighBlockFading(equalize=False).apply(x, h, 0.0, rng=gen)
    assert torch.allclose(raw, h * x, atol=1e-6)


def test_rayleigh_equalised_noise_variance_is_no_over_gain(gen):
    fading = RayleighBlockFading(block_length=1000)
    x = torch.zeros(50, 1000, dtype=torch.complex64)
    h = fading.generate(50, 1000, rng=gen)
    y = fading.apply(x, h, 0.2, rng=gen)
    ratio = (y.abs().pow(2) * h.abs().pow(2)).mean().item() / 0.2
    assert abs(ratio - 1.0) < 0.02


def test_snr_conventions():
    assert snr_to_no(0.0) == 1.0
    assert math.isclose(snr_to_no(10.0), 0.1)
    assert math.isclose(snr_to_no(-10.0), 10.0)
    # Es/N0 = Eb/N0 * m * r
    assert math.isclose(ebno_to_no(3.0, bits_per_symbol=2, code_rate=0.5), snr_to_no(3.0))
    assert check_snr("6") == 6.0


@pytest.mark.parametrize("bad", [-10.5, 40.1, float("nan"), float("inf"), "abc", None])
def test_snr_out_of_range_is_refused(bad):
    with pytest.raises(BadInput, match="SNR"):
        check_snr(bad)


def test_make_channel_by_name_and_unknown_name():
    assert isinstance(make_channel("AWGN"), AWGN)
    assert isinstance(make_channel("rayleigh", block_length=4), RayleighBlockFading)
    with pytest.raises(BadInput, match="unknown channel 'rician'"):
        make_channel("rician")


def test_real_complex_packing_roundtrip(gen):
    r = torch.randn(3, 10, generator=gen)
    z = real_to_complex(r)
    assert z.shape == (3, 5) and z.dtype == torch.complex64
    assert torch.equal(complex_to_real(z), r)
    with pytest.raises(ValueError):
        real_to_complex(torch.zeros(2, 3))
