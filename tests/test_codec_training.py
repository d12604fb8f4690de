"""Codec training, the zoo factory, the digital latent baseline, the shipped codecs and `edsc bench codec`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from editable_deepsc.channel import AWGN, DEFAULT_CODEC, load_codec
from editable_deepsc.channel.codec import CodecConfig, PCAUncodedCodec, SemanticCodec
from editable_deepsc.channel.codec_zoo import BUILTIN_KS, cbr, codec_name, export_codec
from editable_deepsc.channel.digital_latent import (
    allocate_bits,
    dequantise,
    digital_latent_link,
    ideal_digital,
    opta_sdr_db,
    pack,
    quantise,
    unpack,
)
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.cli import main
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.train.codec import CodecTrainConfig, build_codec, codec_step
from editable_deepsc.train.codec_data import LatentSampler
from editable_deepsc.train.codec_metric import image_metric


class _TinyGen(StyleGenerator):
    """A 3 x 8 W+ generator of 16x16 images (z of 100 like the teacher, so the face seeds work)."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.resolution, self.name = 100, 8, 3, 16, "tiny"
        g = torch.Generator().manual_seed(0)
        self.map = nn.Linear(100, 8)
        self.out = nn.Linear(24, 3 * 16 * 16)
        with torch.no_grad():
            self.map.weight.copy_(torch.randn(8, 100, generator=g) * 0.1)
            self.out.weight.copy_(torch.randn(768, 24, generator=g) * 0.2)
        self.requires_grad_(False)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.map(z)

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(w_plus.reshape(w_plus.shape[0], -1))).view(-1, 3, 16, 16)


@pytest.fixture(scope="module")
def tiny_trained():
    torch.manual_seed(0)
    gen = _TinyGen()
    cfg = CodecTrainConfig(k=6, generator="tiny", steps=150, warmup_steps=150, batch_size=64, image_batch=4,
                           hidden=32, lr=3e-3, pca_samples=600, inversion_frac=0.0, perceptual_weight=0.0)
    sampler = LatentSampler(gen, mix_prob=0.5)
    codec = build_codec(cfg, gen, sampler)
    metric = image_metric(gen, codec, sampler, 256, torch.Generator().manual_seed(1))
    test = sampler.sample(256, torch.Generator().manual_seed(2))

    def nmse(snr: float) -> float:
        with torch.no_grad():
            w_hat = codec(test, AWGN(), snr, rng=torch.Generator().manual_seed(3))
        return float(codec.pca.nmse(w_hat, test).mean())

    before = {s: nmse(s) for s in (0.0, 10.0, 20.0)}
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    first = [codec_step(codec, sampler, None, opt, cfg, s, metric)["loss"] for s in range(10)]
    last = [codec_step(codec, sampler, None, opt, cfg, s, metric)["loss"] for s in range(10, cfg.steps)][-10:]
    after = {s: nmse(s) for s in (0.0, 10.0, 20.0)}
    return codec, gen, test, first, last, before, after


def test_a_few_training_steps_lower_the_loss(tiny_trained):
    _, _, _, first, last, before, after = tiny_trained
    assert np.mean(last) < np.mean(first) - 0.3  # log-domain loss: > 1.3 dB lower
    assert after[10.0] < before[10.0]


def test_trained_codec_is_snr_aware(tiny_trained):
    codec, _, test, *_ , after = tiny_trained
    assert after[0.0] > after[10.0] > after[20.0]
    # the decoder uses the SNR it is told: a wrong SNR at the receiver costs accuracy
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        x = codec.encode(test, 20.0)
        y = AWGN()(x, 10 ** (-20 / 10), rng=g)
        right = codec.pca.nmse(codec.decode(y, 20.0), test).mean()
        wrong = codec.pca.nmse(codec.decode(y, 0.0), test).mean()
    assert right < wrong


def test_init_from_pca_starts_at_the_uncoded_baseline():
    gen = _TinyGen()
    sampler = LatentSampler(gen, mix_prob=0.5)
    w = sampler.sample(2000, torch.Generator().manual_seed(0))
    codec = SemanticCodec(CodecConfig(num_ws=3, w_dim=8, k=13, hidden=16))
    with torch.no_grad():  # switch the residual MLPs off: only the linear paths remain
        codec.encoder.out.weight.zero_()
        codec.decoder.out.weight.zero_()
    codec.pca.fit(w)
    codec.init_from_pca(w)
    test = sampler.sample(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = codec.encode(test, 10.0)
        assert torch.allclose(x.abs().pow(2).mean(1), torch.ones(200), atol=1e-5)
        w_hat = codec.decode(x, 40.0)  # no noise: only the fixed 1/(1+no) shrink at 10 dB remains
    err = float(codec.pca.nmse(w_hat, test).mean())
    assert err < 0.02  # 12 main symbols carry all 24 coordinates; shrink 1/1.1 costs ~0.8%


def test_load_codec_round_trip_and_errors(tmp_path):
    gen = _TinyGen()
    w = LatentSampler(gen).sample(300, torch.Generator().manual_seed(0))
    codec = SemanticCodec(CodecConfig(num_ws=3, w_dim=8, k=5, hidden=16))
    codec.pca.fit(w)
    codec.init_from_pca(w)
    path = export_codec(codec, "tiny-codec", "tiny", 16, source="test", weights_dir=tmp_path, cards_dir=tmp_path)
    card = json.loads((tmp_path / "tiny-codec.json").read_text())
    assert card["kind"] == "codec" and card["config"]["k"] == 5 and card["config"]["generator"] == "tiny"
    assert card["config"]["cbr"] == pytest.approx(5 / (16 * 16 * 3))
    loaded = load_codec(path, generator=gen)
    assert isinstance(loaded, SemanticCodec) and not loaded.training
    with torch.no_grad():
        a, b = codec.encode(w[:8], 6.0), loaded.encode(w[:8], 6.0)
    assert torch.allclose(a, b, atol=2e-2)  # float16 storage of the network weights
    assert torch.equal(loaded.pca.mean, codec.pca.mean) and torch.equal(loaded.pca.std, codec.pca.std)
    assert torch.allclose(loaded.pca.axes, codec.pca.axes, atol=1e-3)  # float16 axes
    # a codec for another generator, or for another latent shape, is refused
    with pytest.raises(CheckpointError, match="trained for generator 'tiny'"):
        load_codec(path, generator="edsc-faces64")
    other = _TinyGen()
    other.num_ws = 4
    with pytest.raises(CheckpointError, match="expects latents"):
        load_codec(path, generator=other)
    # tensors of the wrong shape
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    state["enc_linear.weight"] = state["enc_linear.weight"][:, :-1].contiguous()
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_codec(bad)
    # not a codec at all
    save_file({"x": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="not a semantic codec"):
        load_codec(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="unknown model"):
        load_codec("edsc-codec-nope-k1")


def test_train_config_refuses_k_beyond_the_latent():
    with pytest.raises(BadInput, match="k <= 250"):
        CodecTrainConfig(k=256).validate(500)
    with pytest.raises(BadInput):
        CodecTrainConfig(k=64, snr_min=10, snr_max=0).validate(500)


def test_bit_allocation_quantiser_and_packing():
    var = torch.tensor([4.0, 1.0, 0.25, 0.01])
    bits = allocate_bits(var, 9)
    assert int(bits.sum()) == 9 and bits[0] >= bits[1] >= bits[2] >= bits[3]
    assert bits[0] - bits[1] == 1  # a variance 4x larger is worth one more bit (6 dB)
    u = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    idx = quantise(u, bits)
    assert int(idx.max()) < 2 ** int(bits.max())
    assert torch.equal(unpack(pack(idx, bits), bits), idx)
    rec = dequantise(idx, bits)
    assert float((rec[:, 0] - u[:, 0]).pow(2).mean()) < 0.05  # 4 bits: MSE ~0.012 for a unit Gaussian
    assert torch.all(dequantise(quantise(torch.zeros(1, 4), bits), bits) == 0)  # midtread: 0 is a level
    assert torch.all(rec[:, bits == 0] == 0)


def test_digital_latent_link_is_exact_up_to_quantisation_at_high_snr():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(300, 1, 16, generator=g) * 2 + 0.1 * torch.randn(300, 4, 16, generator=g)
    pca = LatentPCA(4, 16).fit(w)
    r = digital_latent_link(w[:4], pca, 60, "awgn", 25.0, rng=g)
    assert r.block_error_rate == 0.0 and r.link_ok == 1.0 and r.mcs_reliable
    assert r.modulation == "64qam"
    w_ideal, budget = ideal_digital(w[:4], pca, 60, 25.0)
    assert int(budget[0]) == int(60 * np.log2(1 + 10**2.5))
    err_link = float(pca.nmse(r.w_hat, w[:4]).mean())
    err_ideal = float(pca.nmse(w_ideal, w[:4]).mean())
    assert err_ideal < err_link < 0.05  # capacity > the MCS's payload; both small
    # OPTA (Shannon) bound is above what the ideal quantiser achieves
    assert opta_sdr_db(pca.std.pow(2), 60, 25.0) > -10 * np.log10(err_ideal)
    # far below the waterfall nothing gets through: the receiver falls back to the mean
    low = digital_latent_link(w[:2], pca, 60, "rayleigh", -5.0, rng=g)
    assert float(pca.nmse(low.w_hat, w[:2]).mean()) > 0.3


# ---------------------------------------------------------------- shipped weights


@pytest.fixture(scope="module")
def faces64():
    from editable_deepsc.generator import load_generator

    return load_generator("edsc-faces64")


def test_builtin_codecs_are_registered_with_their_generator(faces64):
    from editable_deepsc.zoo import registry

    for k in BUILTIN_KS:
        c = registry.card(codec_name("edsc-faces64", k))
        assert c.kind == "codec" and c.config["k"] == k and c.config["generator"] == "edsc-faces64"
        assert c.config["generator_sha256"] == registry.card("edsc-faces64").sha256
        assert c.path.stat().st_size < 3.2e6


def test_default_codec_meets_the_cbr_and_beats_uncoded_pca_at_6db(faces64):
    from editable_deepsc.eval.codec_bench import held_out_latents
    from editable_deepsc.train.codec_data import load_inversion_encoder

    codec = load_codec(DEFAULT_CODEC, generator=faces64)
    assert cbr(codec.k, faces64.resolution) <= 1 / 48
    # what the system sends: encoder inversions of held-out (test-seed) teacher faces
    w, src = held_out_latents(faces64, 24, "inverted", load_inversion_encoder(faces64))
    assert src == "inverted"
    base = PCAUncodedCodec(codec.pca, codec.k)

    def nmse(model, snr: float) -> float:
        with torch.no_grad():
            w_hat = model(w, AWGN(), snr, rng=torch.Generator().manual_seed(7))
        return float(codec.pca.nmse(w_hat, w).mean())

    assert nmse(codec, 6.0) < 0.8 * nmse(base, 6.0)
    errs = [nmse(codec, s) for s in (0.0, 6.0, 12.0, 20.0)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.2 * errs[0]


def test_bench_codec_cli_writes_markdown_and_json(tmp_path, faces64):
    out = tmp_path / "codec.md"
    rc = main(["bench", "codec", "--k", "128", "--snr", "6", "--channel", "awgn", "--n", "2", "--source", "mapped",
               "--method", "semantic,uncoded-pca", "--no-identity", "--quiet", "--out", str(out)])
    assert rc == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["semantic", "uncoded-pca"]
    assert all(r["k"] == 128 and r["snr_db"] == 6.0 and 0 < r["ssim"] <= 1 for r in rows)
    text = out.read_text()
    assert "codec-table:start" in text and "LPIPS-proxy" in text and "edsc bench codec --k 128" in text


def test_bench_and_train_cli_bad_input(tmp_path, capsys):
    assert main(["bench", "codec", "--k", "7", "--n", "1", "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["bench", "codec", "--snr", "abc", "--quiet"]) == 2
    work = tmp_path / "w"
    rc = main(["train", "codec", "--k", "300", "--generator", "edsc-faces64@teacher-init", "--steps", "1",
               "--workdir", str(work), "--quiet", "--no-export"])
    assert rc == 2 and not work.exists()
