"""Codecs for a large W+ (the ffhq set): separable basis, kept coordinates, diagonal metrics, edited data."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from editable_deepsc.channel import AWGN, load_codec
from editable_deepsc.channel.codec import CodecConfig, SemanticCodec
from editable_deepsc.channel.codec_zoo import export_codec
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.channel.separable_pca import SeparableLatentPCA
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.train.codec import CodecTrainConfig, build_codec, codec_step
from editable_deepsc.train.codec_data import LatentSampler, gaussian_z
from editable_deepsc.train.codec_metric import diagonal_metrics


class _WideGen(StyleGenerator):
    """A linear W+ generator of 8x8 images whose latent can be made larger than LARGE_LATENT."""

    def __init__(self, num_ws: int = 4, w_dim: int = 16) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.resolution, self.name = 12, w_dim, num_ws, 8, "wide"
        g = torch.Generator().manual_seed(0)
        self.map = nn.Linear(12, w_dim)
        self.out = nn.Linear(num_ws * w_dim, 3 * 8 * 8, bias=False)
        with torch.no_grad():
            self.map.weight.copy_(torch.randn(w_dim, 12, generator=g) * 0.3)
            self.out.weight.copy_(torch.randn(192, num_ws * w_dim, generator=g) * 0.1)
        self.requires_grad_(False)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.map(z)

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        return self.out(w_plus.reshape(w_plus.shape[0], -1)).view(-1, 3, 8, 8)


def _latents(n: int, seed: int = 0, num_ws: int = 4, w_dim: int = 16) -> torch.Tensor:
    """W+ latents like inversions: a shared w plus smaller per-style offsets, correlated channels."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(w_dim, w_dim, generator=torch.Generator().manual_seed(99))
    w = torch.randn(n, 1, w_dim, generator=g) @ mix
    return w + 0.3 * torch.randn(n, num_ws, w_dim, generator=g) @ mix + 0.5


def test_separable_basis_round_trips_orders_by_variance_and_finds_the_shared_w():
    w = _latents(800)
    p = SeparableLatentPCA(4, 16).fit(w)
    u = p.project(w)
    assert torch.allclose(p.unproject(u), w, atol=1e-4)
    assert torch.allclose(p.unwhiten(p.whiten(w)), w, atol=1e-4)
    assert bool((p.std[:-1] >= p.std[1:]).all())
    assert torch.allclose(p.whiten(w).var(0), torch.ones(64), atol=1e-3)  # measured spreads are the real ones
    # the first style axis is the average over styles (inversions stay close to one w) ...
    assert torch.allclose(p.left[:, 0].abs(), torch.full((4,), 0.5), atol=0.02)
    # ... so a broadcast latent lives in that axis' w_dim coefficients only, most of them the strongest
    broadcast = p.project(_latents(5, seed=1)[:, :1].expand(-1, 4, -1).contiguous())
    axis0 = p.order // 16 == 0
    assert int(axis0[:16].sum()) >= 12
    assert float(broadcast[:, ~axis0].abs().max()) < 0.03 * float(broadcast[:, axis0].abs().max())
    # it keeps as much variance as a full PCA would in the same number of coordinates, nearly
    full = LatentPCA(4, 16).fit(w)
    assert p.explained_variance(16) > 0.97 * full.explained_variance(16)
    assert torch.allclose(p.nmse(w, w), torch.zeros(800))


def test_codec_on_kept_coordinates_with_diagonal_paths(tmp_path):
    w = _latents(1000)
    cfg = CodecConfig(num_ws=4, w_dim=16, k=9, hidden=16, basis="separable", keep=16, diagonal=True)
    codec = SemanticCodec(cfg)
    with torch.no_grad():
        codec.encoder.out.weight.zero_()
        codec.decoder.out.weight.zero_()
    codec.pca.fit(w)
    codec.init_from_pca(w)
    assert codec.enc_linear.weight.shape == (16,) and codec.dec_linear.weight.shape == (16,)
    assert codec.encoder.layers[0].in_features == 16 and codec.decoder.out.out_features == 16
    test = _latents(200, seed=3)
    with torch.no_grad():
        x = codec.encode(test, 10.0)
        assert x.shape == (200, 9) and x.dtype == torch.complex64
        assert torch.allclose(x.abs().pow(2).mean(1), torch.ones(200), atol=1e-5)
        w_hat = codec.decode(x, 40.0)
    # noise-free, the kept coordinates come back (up to the fixed 10 dB shrink) and the rest sit at the mean
    floor = 1.0 - codec.pca.explained_variance(16)
    err = float(codec.pca.nmse(w_hat, test).mean())
    assert floor < err < floor + 0.03
    # the card carries basis, keep and diagonal; the loaded codec is the same
    path = export_codec(codec, "wide-codec", "wide", 8, source="test", weights_dir=tmp_path, cards_dir=tmp_path)
    card = json.loads((tmp_path / "wide-codec.json").read_text())["config"]
    assert (card["basis"], card["keep"], card["diagonal"]) == ("separable", 16, True)
    loaded = load_codec(path, generator=_WideGen())
    assert torch.equal(loaded.pca.order, codec.pca.order)
    with torch.no_grad():
        assert torch.allclose(loaded.decode(x, 40.0), w_hat, atol=2e-2)
    with pytest.raises(ValueError, match="keep"):
        SemanticCodec(CodecConfig(num_ws=4, w_dim=16, k=9, keep=65))


def test_edited_share_of_the_data_moves_along_the_directions():
    gen = _WideGen()
    dirs = torch.zeros(2, 4, 16)
    dirs[0, :, 0], dirs[1, :, 1] = 1.0, 1.0
    plain = LatentSampler(gen, mix_prob=0.0, draw_z=gaussian_z(12))
    edited = LatentSampler(gen, mix_prob=0.0, draw_z=gaussian_z(12), edits=dirs, edit_frac=0.5, edit_range=2.0)
    a = plain.sample(64, torch.Generator().manual_seed(0))
    b = edited.sample(64, torch.Generator().manual_seed(0))
    moved = (b - a).abs().flatten(1).amax(1) > 0
    assert int(moved.sum()) == 32  # exactly the edited share
    d = (b - a)[moved]
    assert float(d[:, :, 2:].abs().max()) == 0.0  # only along the two directions
    assert float(d.abs().amax()) <= 2.0
    # without directions the share is ignored
    assert LatentSampler(gen, edits=None, edit_frac=0.5).edit_frac == 0.0


def test_diagonal_pixel_metric_matches_the_linear_generators_jacobian():
    gen = _WideGen()
    with torch.no_grad():  # channels of very different weight in the image
        gen.out.weight.mul_(torch.logspace(0, -1.5, 16).repeat(4))
    w = _latents(512)
    codec = SemanticCodec(CodecConfig(num_ws=4, w_dim=16, k=5, hidden=8, basis="separable", keep=8, diagonal=True))
    codec.pca.fit(w)
    m = diagonal_metrics(gen, codec, w, torch.Generator().manual_seed(0), batch=128, progress=False)
    assert set(m) == {"pixel"} and m["pixel"].shape == (8,)
    # exact: columns of J = out.weight applied to the unprojected unit coordinates
    basis = codec.latents(torch.eye(8)) - codec.latents(torch.zeros(1, 8))
    jac = gen.out.weight @ basis.reshape(8, -1).T / 192**0.5  # (P, 8)
    exact = jac.pow(2).sum(0)
    assert torch.allclose(m["pixel"], exact, rtol=0.3)  # 512 random probes: ~6% standard error
    assert torch.corrcoef(torch.stack([m["pixel"].log(), exact.log()]))[0, 1] > 0.9


def test_large_latents_get_the_large_latent_defaults_and_they_train():
    small, large = _WideGen(), _WideGen(num_ws=9, w_dim=512)
    assert CodecTrainConfig.for_generator(small, k=8).basis == "full"
    cfg = CodecTrainConfig.for_generator(large, k=8, steps=160, photo_pool=0, edit_frac=0.0, pca_samples=300,
                                         batch_size=32, hidden=16, attribute_weight=0.0, identity_weight=0.0)
    assert (cfg.basis, cfg.keep, cfg.diagonal, cfg.z_source) == ("separable", 14, True, "gaussian")
    assert cfg.warmup_steps == 160  # every step a latent step
    with pytest.raises(BadInput, match="fewer coordinates"):
        CodecTrainConfig(k=8, keep=10).validate(4608)
    # steps of the latent + diagonal pixel loss lower the error over the uncoded-PCA start
    sampler = LatentSampler(large, mix_prob=0.2, draw_z=gaussian_z(12))
    codec = build_codec(cfg, large, sampler)
    metric = diagonal_metrics(large, codec, sampler.sample(32, torch.Generator().manual_seed(1)),
                              torch.Generator().manual_seed(2), progress=False)
    test = sampler.sample(256, torch.Generator().manual_seed(5))

    def nmse(snr: float) -> float:
        with torch.no_grad():
            w_hat = codec(test, AWGN(), snr, rng=torch.Generator().manual_seed(3))
        return float(codec.pca.nmse(w_hat, test).mean())

    before = [nmse(0.0), nmse(10.0)]
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    terms = [codec_step(codec, sampler, None, opt, cfg, s, metric) for s in range(cfg.steps)]
    assert "pixel_gn" in terms[0] and "attribute_gn" not in terms[0]
    after = [nmse(0.0), nmse(10.0)]
    assert after[0] < 0.85 * before[0] and after[1] < 0.95 * before[1]


def test_photo_bench_rows_render_identity_to_the_photo_and_edits_kept():
    from editable_deepsc.eval.codec_bench import markdown_tables
    from editable_deepsc.eval.codec_bench_photos import _instruction, met

    ins = [_instruction("happy:more"), _instruction("yaw:less")]
    before = {"happy": torch.tensor([0.2, 0.1]), "yaw": torch.tensor([0.0, 5.0])}
    assert met(ins, before, {"happy": torch.tensor([0.9, 0.1]), "yaw": torch.tensor([0.0, -20.0])}).tolist() == [
        True, True]
    assert met(ins, before, {"happy": torch.tensor([0.2, 0.1]), "yaw": torch.tensor([0.0, 5.0])}).tolist() == [
        False, False]
    row = {"k": 128, "cbr": 128 / (3 * 256 * 256), "channel": "awgn", "snr_db": 6.0, "method": "semantic",
           "nmse": 0.2, "sdr_db": 6.99, "bound_db": 6.97, "opta_db": None, "ssim": 0.8, "lpips": 0.3,
           "identity": None, "identity_distance": 0.41, "identity_kept": 0.75, "edit_kept": 0.5}
    md = markdown_tables({"rows": [row], "meta": {"channels": ["awgn"], "snrs_db": [6.0]}}, 128)
    assert "edit kept" in md and "0.410 / 75% | 50%" in md and "6.99 / 0.800 / 75% / 50%" in md
    row.update(second_distance=0.3, second_kept=0.5)
    md = markdown_tables({"rows": [row], "meta": {"channels": ["awgn"], "snrs_db": [6.0]}}, 128)
    assert "FaceRes 0.300 / 50% | 50%" in md and "6.99 / 0.800 / 75%, 50% / 50%" in md


def test_delta_codec_in_the_separable_basis_of_a_large_latent(tmp_path):
    from editable_deepsc.channel.delta import (
        DeltaCodec,
        fit_delta_statistics,
        load_delta_statistics,
        save_delta_statistics,
    )

    g = torch.Generator().manual_seed(0)
    # edit deltas of a 9 x 512 W+ (over 4096 coordinates): a few directions, each in a few styles
    dirs = torch.zeros(6, 9, 512)
    for i in range(6):
        dirs[i, 2 * (i % 4) : 2 * (i % 4) + 3] = torch.randn(512, generator=g)
    deltas = torch.randn(400, 6, generator=g) @ dirs.flatten(1)
    deltas = deltas.view(400, 9, 512) + 0.01 * torch.randn(400, 9, 512, generator=g)
    stats = fit_delta_statistics(deltas)
    assert isinstance(stats, SeparableLatentPCA)
    path = tmp_path / "d.safetensors"
    save_delta_statistics(stats, path, "wide")
    loaded = load_delta_statistics(path, 9, 512)
    assert isinstance(loaded, SeparableLatentPCA) and torch.equal(loaded.order, stats.order)
    codec = DeltaCodec(loaded, k=64)
    test = (torch.randn(8, 6, generator=g) @ dirs.flatten(1)).view(8, 9, 512)
    with torch.no_grad():
        y = codec.encode(test, 30.0)
        est = codec.decode(y, 30.0)
    err = (est - test).flatten(1).pow(2).sum(1) / test.flatten(1).pow(2).sum(1)
    assert float(err.max()) < 0.1  # the deltas live in few separable axes: sent nearly whole
    axes = codec.subspace(30.0)
    assert axes.shape[0] == 9 * 512 and torch.allclose(axes.T @ axes, torch.eye(axes.shape[1]), atol=1e-4)
    assert float(codec.captured_energy(test, 30.0).min()) > 0.9
