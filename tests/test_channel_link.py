"""The one semantic link (channel/link.py) and the ChannelConfig that builds its channel."""

from __future__ import annotations

import math

import pytest
import torch

from editable_deepsc.channel import AWGN, RayleighBlockFading, average_power, normalize_power, snr_to_no
from editable_deepsc.channel.codec import PCAUncodedCodec, SemanticCodec, transmit_symbols
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.link import LinkResult, check_finite, pass_channel, send_latent
from editable_deepsc.errors import BadInput


def _codec(k: int = 6) -> PCAUncodedCodec:
    """The uncoded PCA scheme on latents (N, 2, 8), fitted on random latents."""
    pca = LatentPCA(2, 8)
    pca.fit(torch.randn(200, 2, 8, generator=torch.Generator().manual_seed(0)))
    return PCAUncodedCodec(pca, k)


def _unit_encode(w: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Encoder stand-in: the flattened latent as complex symbols scaled to unit power."""
    return normalize_power(torch.complex(w.flatten(1)[:, ::2], w.flatten(1)[:, 1::2]))


# ---------------------------------------------------------------------- ChannelConfig
def test_channel_config_builds_its_channel():
    awgn = ChannelConfig("AWGN", 6.0).build()
    fading = ChannelConfig("rayleigh", 3.0, block_length=4).build()
    assert isinstance(awgn, AWGN)
    assert isinstance(fading, RayleighBlockFading) and fading.block_length == 4
    assert ChannelConfig("rayleigh", 3.0).build().block_length is None
    assert ChannelConfig("awgn", 10.0).no == pytest.approx(0.1)
    assert ChannelConfig("rayleigh", 6, 8).to_json() == {"name": "rayleigh", "snr_db": 6.0, "block_length": 8}


@pytest.mark.parametrize("args, match", [
    (("rician", 6.0), "unknown channel 'rician'"), (("awgn", 40.5), "SNR"), (("awgn", "x"), "SNR"),
    (("rayleigh", 6.0, 0), "block_length"),
])
def test_channel_config_refuses_bad_settings(args, match):
    with pytest.raises(BadInput, match=match):
        ChannelConfig(*args)


def test_channel_config_is_exported_by_the_channel_package():
    import editable_deepsc.channel as channel

    assert channel.ChannelConfig is ChannelConfig


# ---------------------------------------------------------------------- channels, one shape
@pytest.mark.parametrize("name", ["awgn", "rayleigh"])
def test_both_channels_return_y_and_h_of_the_same_shape(name):
    x = normalize_power(torch.randn(3, 40, dtype=torch.complex64, generator=torch.Generator().manual_seed(1)))
    y, h = ChannelConfig(name, 10.0, block_length=8).build()(x, 0.1, rng=torch.Generator().manual_seed(2),
                                                               return_h=True)
    assert y.shape == h.shape == x.shape and y.dtype == h.dtype == torch.complex64
    if name == "awgn":
        assert torch.equal(h, torch.ones_like(h))
    else:
        assert not torch.equal(h, torch.ones_like(h))
        assert torch.equal(h[:, :8], h[:, :1].expand(3, 8))  # one gain per block of 8


def test_awgn_with_or_without_h_draws_the_same_noise():
    x = normalize_power(torch.randn(2, 30, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)))
    a = AWGN()(x, 0.3, rng=torch.Generator().manual_seed(5))
    b, _ = AWGN()(x, 0.3, rng=torch.Generator().manual_seed(5), return_h=True)
    assert torch.equal(a, b)


def test_pass_channel_reports_the_receiver_snr():
    x = normalize_power(torch.randn(4, 50, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)))
    snr = torch.full((4,), 7.0)
    _, h, snr_rx = pass_channel(x, AWGN(), snr, torch.Generator().manual_seed(1))
    assert torch.equal(snr_rx, snr) and torch.equal(h, torch.ones_like(h))
    _, h, snr_rx = pass_channel(x, RayleighBlockFading(), snr, torch.Generator().manual_seed(1))
    expected = 7.0 + 10.0 * torch.log10(h.abs().pow(2).mean(dim=1))
    assert torch.allclose(snr_rx, expected) and not torch.allclose(snr_rx, snr)
    y2, snr2 = transmit_symbols(x, RayleighBlockFading(), snr, torch.Generator().manual_seed(1))
    assert torch.equal(snr2, snr_rx)


# ---------------------------------------------------------------------- send_latent
@pytest.mark.parametrize("name", ["awgn", "rayleigh"])
def test_send_latent_reports_what_was_sent(name):
    codec = _codec(k=6)
    w = torch.randn(3, 2, 8, generator=torch.Generator().manual_seed(4))
    r = send_latent(w, codec.encode, codec.decode, ChannelConfig(name, 12.0), torch.Generator().manual_seed(9))
    assert isinstance(r, LinkResult)
    assert r.w.shape == w.shape and r.k == 6
    assert r.symbols.shape == r.h.shape == (3, 6) and r.symbols.dtype == r.h.dtype == torch.complex64
    assert r.snr_rx_db.shape == (3,)
    assert torch.equal(r.symbols, codec.encode(w))
    assert set(r.timings) == {"encode", "channel", "decode"} and all(t >= 0 for t in r.timings.values())
    assert r.power == pytest.approx(float(r.symbols.abs().pow(2).mean()))
    if name == "awgn":
        assert torch.equal(r.h, torch.ones_like(r.h)) and torch.equal(r.snr_rx_db, torch.full((3,), 12.0))


@pytest.mark.parametrize("name", ["awgn", "rayleigh"])
def test_send_latent_sends_unit_power_and_decodes_at_high_snr(name):
    w = torch.randn(5, 4, 16, generator=torch.Generator().manual_seed(0))
    ch = ChannelConfig(name, 40.0)

    def decode(y, snr_rx):
        z = torch.stack([y.real, y.imag], dim=-1).reshape(y.shape[0], 4, 16)
        return z / z.flatten(1).std(dim=1).view(-1, 1, 1)

    r = send_latent(w, _unit_encode, decode, ch, torch.Generator().manual_seed(3))
    assert torch.allclose(average_power(r.symbols), torch.ones(5), atol=1e-5)
    assert r.k == 32
    # at 40 dB the decoded latent is the sent one up to scale (zero-forcing removes the gains)
    ref = w / w.flatten(1).std(dim=1).view(-1, 1, 1)
    cos = torch.nn.functional.cosine_similarity(r.w.flatten(1), ref.flatten(1))
    assert bool((cos > 0.99).all())


def test_send_latent_is_reproducible_and_matches_the_codec_forward():
    codec = _codec(k=5)
    w = torch.randn(2, 2, 8, generator=torch.Generator().manual_seed(1))
    ch = ChannelConfig("rayleigh", 6.0)
    a = send_latent(w, codec.encode, codec.decode, ch, torch.Generator().manual_seed(11))
    b = send_latent(w, codec.encode, codec.decode, ch, torch.Generator().manual_seed(11))
    assert torch.equal(a.w, b.w) and torch.equal(a.h, b.h)
    # the same maths as the differentiable codec forward (training path) for the same seed
    fwd = codec(w, RayleighBlockFading(), 6.0, rng=torch.Generator().manual_seed(11))
    assert torch.equal(a.w, fwd)


def test_send_latent_tells_the_encoder_the_nominal_snr():
    seen = []

    def encode(w, snr_db):
        seen.append(snr_db)
        return _unit_encode(w, snr_db)

    send_latent(torch.randn(1, 2, 8), encode, lambda y, s: y, ChannelConfig("awgn", 3.5), None)
    assert seen == [3.5]


def test_check_finite_refuses_nan():
    check_finite(torch.zeros(2), "latent")
    with pytest.raises(BadInput, match="latent delta contains NaN or inf"):
        check_finite(torch.tensor([0.0, math.inf]), "latent delta")


def test_semantic_codec_goes_through_the_same_link():
    from editable_deepsc.channel.codec import CodecConfig

    codec = SemanticCodec(CodecConfig(num_ws=2, w_dim=8, k=4, hidden=16, depth=1)).eval()
    w = torch.randn(2, 2, 8, generator=torch.Generator().manual_seed(0))
    r = send_latent(w, codec.encode, codec.decode, ChannelConfig("awgn", 9.0), torch.Generator().manual_seed(2))
    with torch.no_grad():
        fwd = codec(w, AWGN(), 9.0, rng=torch.Generator().manual_seed(2))
    assert torch.equal(r.w, fwd) and r.k == 4
    assert torch.allclose(average_power(r.symbols), torch.ones(2), atol=1e-5)
    assert snr_to_no(9.0) == pytest.approx(ChannelConfig("awgn", 9.0).no)
