"""StyleGAN2 in pure torch: shapes, ops against their definitions, rosinality checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator import stylegan2 as sg
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.zoo import catalog

CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}


def tiny(seed: int = 0) -> sg.StyleGAN2Generator:
    torch.manual_seed(seed)
    g = sg.StyleGAN2Generator(32, style_dim=16, n_mlp=2, channels=CHANNELS)
    with torch.no_grad():  # make noise weights and biases non-zero so that every parameter matters
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("bias"):
                p.normal_(0.0, 0.2)
    return g.eval()


@pytest.fixture
def user_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("EDSC_USER_ZOO", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_num_ws_and_output_shape(size):
    ch = {2**i: 8 for i in range(2, int(math.log2(size)) + 1)}
    g = sg.StyleGAN2Generator(size, style_dim=8, n_mlp=1, channels=ch)
    assert g.num_ws == 2 * int(math.log2(size)) - 2
    x = g.synthesis(torch.randn(2, g.num_ws, 8))
    assert x.shape == (2, 3, size, size)


def test_bad_size_and_channels():
    with pytest.raises(BadInput):
        sg.StyleGAN2Generator(48, style_dim=8, n_mlp=1, channels=CHANNELS)
    with pytest.raises(BadInput):
        sg.StyleGAN2Generator(64, style_dim=8, n_mlp=1, channels=CHANNELS)  # no 64 px entry
    with pytest.raises(BadInput):
        tiny().synthesis(torch.randn(1, 5, 16))  # wrong num_ws


def test_modulated_conv_equals_grouped_weight_form():
    """The input-scaling form equals the fused form (weights modulated + demodulated per sample, grouped conv)."""
    torch.manual_seed(1)
    for upsample in (False, True):
        m = sg.ModulatedConv2d(6, 5, 3, 4, upsample=upsample)
        x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 4)
        s = m.modulation(w)
        wt = m.scale * m.weight * s[:, None, :, None, None]  # (N, out, in, k, k)
        wt = wt * torch.rsqrt(wt.pow(2).sum((2, 3, 4)) + 1e-8)[:, :, None, None, None]
        if upsample:
            wt = wt.transpose(1, 2).reshape(3 * 6, 5, 3, 3)
            ref = F.conv_transpose2d(x.reshape(1, 18, 8, 8), wt, stride=2, groups=3).reshape(3, 5, 17, 17)
            ref = m.blur(ref)
        else:
            ref = F.conv2d(x.reshape(1, 18, 8, 8), wt.reshape(15, 6, 3, 3), padding=1, groups=3).reshape(3, 5, 8, 8)
        out = m(x, w)
        assert out.shape == ref.shape == (3, 5, 16 if upsample else 8, 16 if upsample else 8)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_demodulation_normalises_output_channels():
    """With unit-variance i.i.d. input, demodulated outputs have about unit variance."""
    torch.manual_seed(2)
    m = sg.ModulatedConv2d(64, 32, 3, 8).requires_grad_(False)
    out = m(torch.randn(8, 64, 16, 16), torch.randn(8, 8) * 3)
    assert 0.8 < out[:, :, 1:-1, 1:-1].std().item() < 1.2


def test_upsample_preserves_constant_and_doubles_size():
    up = sg.Upsample(sg.BLUR_KERNEL)
    y = up(torch.full((1, 3, 8, 8), 0.7))
    assert y.shape == (1, 3, 16, 16)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], 0.7))


def test_upfirdn2d_is_true_convolution():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    k = torch.arange(9.0).reshape(3, 3)
    y = sg.upfirdn2d(x, k, pad=(1, 1))
    torch.testing.assert_close(y[0, 0, 1:4, 1:4], k)  # impulse response = the (unflipped) kernel


def test_equal_linear_scaling():
    lin = sg.EqualLinear(4, 3, bias_init=1.0, lr_mul=0.01)
    x = torch.randn(2, 4)
    ref = x @ (lin.weight * 0.01 / 2).T + lin.bias * 0.01
    torch.testing.assert_close(lin(x), ref)


def test_noise_modes_and_truncation():
    g = tiny()
    w = g.mapping(torch.randn(2, 16))
    wp = g.broadcast(w)
    a, b = g.synthesis(wp), g.synthesis(wp)
    torch.testing.assert_close(a, b)  # const noise: deterministic
    r1 = g.synthesis(wp, noise_mode="random", rng=torch.Generator().manual_seed(3))
    r2 = g.synthesis(wp, noise_mode="random", rng=torch.Generator().manual_seed(3))
    torch.testing.assert_close(r1, r2)
    assert (r1 - a).abs().max() > 1e-3
    with pytest.raises(BadInput):
        g.synthesis(wp, noise_mode="loud")
    z = torch.randn(2, 16)
    t0 = g(z, truncation=0.0)
    torch.testing.assert_close(t0[0], g.synthesis(g.broadcast(g.mean_w()[None]))[0])


def test_rosinality_round_trip_identical_images(tmp_path, user_zoo):
    g = tiny()
    ckpt = sg.to_rosinality_checkpoint(g)
    assert "convs.0.conv.blur.kernel" in ckpt["g_ema"] and "noises.noise_0" in ckpt["g_ema"]
    assert "style.1.weight" in ckpt["g_ema"] and "to_rgbs.0.upsample.kernel" in ckpt["g_ema"]
    path = tmp_path / "tiny.pt"
    torch.save(ckpt, path)
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = g(z)
        h = load_generator(path)
        assert h.config["size"] == 32 and h.num_ws == 8 and h.w_dim == 16
        assert torch.equal(h(z), ref)
        torch.testing.assert_close(h.mean_w(), ckpt["latent_avg"])
        # converted once, registered under <stem>-<sha8>; loads by name and again by path
        cards = catalog.list_user_cards()
        assert len(cards) == 1 and cards[0].name == h.name and cards[0].path.suffix == ".safetensors"
        assert torch.equal(load_generator(h.name)(z), ref)
        assert torch.equal(load_generator(path)(z), ref)
        assert torch.equal(load_generator(cards[0].path)(z), ref)
    assert all(r.ok for r in catalog.verify_cards(cards))


def test_rosinality_bad_checkpoints(tmp_path, user_zoo):
    p = tmp_path / "no_g_ema.pt"
    torch.save({"g": {}}, p)
    with pytest.raises(CheckpointError, match="g_ema"):
        load_generator(p)
    p = tmp_path / "pickled.pt"
    torch.save({"g_ema": tiny().state_dict(), "args": BadInput("x")}, p)  # arbitrary object: refused
    with pytest.raises(CheckpointError, match="weights_only"):
        load_generator(p)
    state = sg.to_rosinality_checkpoint(tiny())["g_ema"]
    state["convs.1.conv.weight"] = torch.zeros(1, 16, 7, 3, 3)
    p = tmp_path / "shape.pt"
    torch.save({"g_ema": state}, p)
    with pytest.raises(CheckpointError, match="shape"):
        load_generator(p)
    p = tmp_path / "garbage.pt"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_generator(p)
