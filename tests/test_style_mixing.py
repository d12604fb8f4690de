"""W+ style groups and mixing (generator/mixing.py) and the per-group measurement helpers (eval/ffhq_mixing.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.eval import ffhq_mixing
from editable_deepsc.generator.mixing import ALL, GROUPS, group_mask, mix_groups, style_groups, style_layout
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN, MobileStyleGANConfig


def tiny(seed: int = 0) -> MobileStyleGAN:
    """3 blocks (8, 16, 32 px features, 64 px image), W+ of 11 x 16, random non-zero noise and biases."""
    torch.manual_seed(seed)
    g = MobileStyleGAN(MobileStyleGANConfig(z_dim=16, w_dim=16, n_mapping=2, input_channels=32, channels=[32, 16, 8]))
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "noise" in name or name.endswith("bias"):
                p.normal_(0, 0.1)
    return g.eval()


def test_ffhq_layout_maps_the_23_styles_to_blocks_and_groups():
    layout = style_layout(MobileStyleGANConfig())
    assert len(layout) == 23
    assert [(s.index, s.module, s.resolution) for s in layout[:5]] == [
        (0, "conv1", 4), (1, "layers.0.up", 8), (2, "layers.0.conv1", 8), (3, "layers.0.conv2", 8), (4, "layers.1.up", 16)]  # fmt: skip
    assert (layout[21].module, layout[21].resolution) == ("layers.6.conv2", 512)
    assert (layout[22].module, layout[22].resolution) == ("to_img", 1024)
    groups = style_groups(MobileStyleGANConfig())
    assert groups == {"coarse": (0, 1, 2, 3), "middle": tuple(range(4, 10)), "fine": tuple(range(10, 23))}


def test_tiny_groups_partition_w_plus():
    g = tiny()
    groups = style_groups(g.config)
    assert groups == {"coarse": (0, 1, 2, 3), "middle": tuple(range(4, 10)), "fine": (10,)}
    assert sorted(i for v in groups.values() for i in v) == list(range(g.num_ws))
    assert group_mask(g.config, ALL).all()
    assert group_mask(g.config, ["coarse", "middle"]).sum() == 10
    with pytest.raises(BadInput, match="unknown style group 'hair'"):
        group_mask(g.config, "hair")


@torch.no_grad()
def test_mixing_a_group_changes_only_its_styles_and_all_gives_b():
    g = tiny()
    w_a = g.broadcast(g.mapping(torch.randn(2, 16)))
    w_b = g.broadcast(g.mapping(torch.randn(2, 16)))
    for grp in GROUPS:
        m = mix_groups(g.config, w_a, w_b, grp)
        idx = list(style_groups(g.config)[grp])
        rest = [i for i in range(g.num_ws) if i not in idx]
        torch.testing.assert_close(m[:, idx], w_b[:, idx], atol=0, rtol=0)
        torch.testing.assert_close(m[:, rest], w_a[:, rest], atol=0, rtol=0)
        assert not torch.equal(g.synthesis(m), g.synthesis(w_a))
    torch.testing.assert_close(g.synthesis(mix_groups(g.config, w_a, w_b, ALL)), g.synthesis(w_b), atol=0, rtol=0)
    torch.testing.assert_close(mix_groups(g.config, w_a, w_b, list(GROUPS)), w_b, atol=0, rtol=0)
    # fine styles only act after the middle blocks: the features up to 32 px stay A's
    fa, ff = g.features(w_a), g.features(mix_groups(g.config, w_a, w_b, "fine"))
    for a, b in zip(fa, ff):
        torch.testing.assert_close(a, b)
    # coarse styles change the very first features
    fc = g.features(mix_groups(g.config, w_a, w_b, "coarse"))
    assert (fc[0] - fa[0]).abs().max() > 1e-4


def test_fractions_are_ratios_of_mean_changes():
    ch = {"coarse": np.array([2.0, 4.0]), "middle": np.array([1.0, 0.0]), "fine": np.array([0.0, 0.0]),
          ALL: np.array([4.0, 4.0])}  # fmt: skip
    r = ffhq_mixing.fractions(ch, n_boot=200)
    assert r["fraction"] == pytest.approx({"coarse": 0.75, "middle": 0.125, "fine": 0.0})
    assert r["mean_change"][ALL] == 4.0
    assert r["fraction_sum"] == pytest.approx(0.875)
    lo, hi = r["fraction_ci95"]["coarse"]
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0
    assert r["fraction_ci95"]["fine"] == [0.0, 0.0]


def test_carriers_pick_groups_above_the_threshold():
    def q(c, m, f):
        return {"fraction": {"coarse": c, "middle": m, "fine": f}}

    per = {"yaw": q(0.9, 0.1, 0.0), "pitch": q(0.7, 0.3, 0.0), "rgb_image": q(0.0, 0.2, 0.9),
           "rgb_background": q(0.1, 0.5, 0.5), "rgb_face": q(0.0, 0.2, 0.7)}  # fmt: skip
    c = ffhq_mixing.carriers(per)
    assert c["pose"]["groups"] == ["coarse"]
    assert c["colour"]["groups"] == ["fine"]
    assert c["colour"]["mean_fraction"]["middle"] == pytest.approx(0.3)
    assert "expression" not in c
    assert ffhq_mixing.verdict(c).startswith("**pose**: coarse (coarse 0.80, middle 0.20, fine 0.00)")


@torch.no_grad()
def test_mixing_figure_layout_on_the_tiny_generator():
    g = tiny()
    fig = ffhq_mixing.mixing_figure(g, [1, 2], [3, 4, 5], cell=16, gap=2)
    assert fig.dtype == np.uint8
    assert fig.shape == (3 * 18 - 2, 16 + 2 + 3 * (3 * 16 + 2) - 2, 3)
    assert (fig[:16, :16] == 255).all()  # empty corner
    b0 = ffhq_mixing.render(g, ffhq_mixing.seed_w_plus(g, [3]), 16)[0]
    want = ((b0.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(fig[:16, 18 + 16 : 18 + 32], want)  # B above the middle cell of its block


def test_saved_figure_is_a_small_palette_png_with_a_legend(tmp_path):
    from PIL import Image

    canvas = np.full((3 * 66 - 2, 64 + 2 + 2 * (3 * 64 + 2) - 2, 3), 255, np.uint8)
    canvas[66:, 66:] = np.random.default_rng(0).integers(0, 256, size=canvas[66:, 66:].shape, dtype=np.uint8)
    path = ffhq_mixing.save_figure(canvas, tmp_path / "fig.png", cell=64)
    im = Image.open(path)
    assert im.mode == "P" and im.size == (canvas.shape[1], canvas.shape[0])
    rgb = np.asarray(im.convert("RGB"))
    assert (rgb[:64, :64] < 128).any()  # legend text in the corner
