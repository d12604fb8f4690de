"""The semantic channel codec and its uncoded PCA baseline (shapes, power, SNR behaviour, training signal)."""

from __future__ import annotations

import torch

from editable_deepsc.channel import AWGN, RayleighBlockFading, average_power
from editable_deepsc.channel.codec import CodecConfig, PCAUncodedCodec, SemanticCodec, transmit_symbols
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.snr_adapter import SNRAdapter


def _latents(n: int, num_ws: int = 4, w_dim: int = 16, seed: int = 0) -> torch.Tensor:
    """W+-like latents: a shared w plus small per-layer offsets (low-rank, like inverted latents)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 1, w_dim, generator=g) * 2.0 + 0.5
    return w + 0.1 * torch.randn(n, num_ws, w_dim, generator=g)


def test_pca_whitening_roundtrip_and_energy_compaction():
    w = _latents(500)
    pca = LatentPCA(4, 16).fit(w)
    u = pca.whiten(w)
    assert torch.allclose(u.std(0), torch.ones(64), atol=0.05)
    assert torch.allclose(pca.unwhiten(u), w, atol=1e-4)
    # a shared w over 4 layers: 16 of 64 axes carry almost everything
    assert pca.explained_variance(16) > 0.98


def test_codec_shapes_unit_power_and_gradients():
    w = _latents(8)
    codec = SemanticCodec(CodecConfig(num_ws=4, w_dim=16, k=12, hidden=32))
    codec.pca.fit(_latents(200, seed=1))
    x = codec.encode(w, 6.0)
    assert x.shape == (8, 12) and x.dtype == torch.complex64
    assert torch.allclose(average_power(x), torch.ones(8), atol=1e-5)
    w_hat = codec(w, AWGN(), torch.linspace(0, 20, 8), rng=torch.Generator().manual_seed(0))
    assert w_hat.shape == w.shape
    w_hat.pow(2).mean().backward()
    assert all(p.grad is not None for p in codec.encoder.parameters())


def test_snr_adapter_starts_as_identity_and_depends_on_snr():
    ad = SNRAdapter(8)
    h = torch.randn(3, 8)
    assert torch.equal(ad(h, torch.tensor([0.0, 10.0, 20.0])), h)
    torch.nn.init.normal_(ad.net[-1].weight)
    out = ad(h[:1].expand(2, 8), torch.tensor([0.0, 20.0]))
    assert not torch.allclose(out[0], out[1])


def test_training_through_awgn_lowers_latent_error_towards_the_linear_bound():
    torch.manual_seed(0)
    train = _latents(2000, seed=2)
    test = _latents(300, seed=3)
    k = 9  # 8 symbols = 16 real components for a latent whose energy lives in 16 dims, + the scale symbol
    codec = SemanticCodec(CodecConfig(num_ws=4, w_dim=16, k=k, hidden=128))
    codec.pca.fit(train)  # linear paths left at their random init: training must find the scheme
    opt = torch.optim.Adam(codec.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)

    def nmse(model, snr):
        with torch.no_grad():
            w_hat = model(test, AWGN(), snr, rng=torch.Generator().manual_seed(5))
        return model.pca.nmse(w_hat, test).mean().item()

    before = nmse(codec, 10.0)
    for step in range(600):
        idx = torch.randint(0, 2000, (64,), generator=g)
        snr = torch.rand(64, generator=g) * 20
        w_hat = codec(train[idx], AWGN(), snr, rng=g)
        loss = codec.pca.nmse(w_hat, train[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = nmse(codec, 10.0)
    assert after < 0.5 * before
    baseline = PCAUncodedCodec(codec.pca, k)
    # analog graceful degradation: error falls as SNR rises, for both
    assert nmse(codec, 20.0) < nmse(codec, 0.0)
    assert nmse(baseline, 20.0) < nmse(baseline, 0.0)
    # For a Gaussian source at matched bandwidth, uncoded linear transmission with LMMSE
    # is optimal (Goblick 1965), so a short training run must come close to it, not beat it.
    assert after < 2.0 * nmse(baseline, 10.0)


def test_uncoded_pca_is_exact_without_noise_when_k_covers_the_latent():
    w = _latents(50)
    pca = LatentPCA(4, 16).fit(_latents(400, seed=4))
    base = PCAUncodedCodec(pca, 32)
    y = base.encode(w)
    assert torch.allclose(base.decode(y, 40.0), w, atol=2e-3)


def test_rayleigh_receiver_uses_instantaneous_snr():
    x = torch.ones(4, 10, dtype=torch.complex64)
    y, snr_rx = transmit_symbols(x, RayleighBlockFading(), torch.full((4,), 10.0), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and snr_rx.shape == (4,)
    assert not torch.allclose(snr_rx, torch.full((4,), 10.0))
    _, snr_awgn = transmit_symbols(x, AWGN(), torch.full((4,), 10.0), torch.Generator().manual_seed(0))
    assert torch.equal(snr_awgn, torch.full((4,), 10.0))
