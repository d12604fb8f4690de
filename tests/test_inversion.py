"""Inversion: e4e-style encoder, optimisation, hybrid, encoder training/resume, invert() entry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.inversion.encoder import E4EEncoder, layer_groups, load_encoder, save_encoder
from editable_deepsc.inversion.invert import invert
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.inversion.optimize import invert_optimize, lr_at
from editable_deepsc.train.encoder import EncoderTrainConfig, sample_latents, train_encoder, unlocked_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

PIXEL = ReconstructionLoss(perceptual=0.0)


class TinyGenerator(StyleGenerator):
    """16x16 style generator, num_ws=3, w_dim=8: fc(w_0) -> 4x4, then two styled upsampling convs."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.z_dim = self.w_dim = 8
        self.num_ws, self.resolution, self.name = 3, 16, "tiny"
        self.map = nn.Linear(8, 8)
        self.fc = nn.Linear(8, 16 * 4 * 4)
        self.convs = nn.ModuleList(nn.Conv2d(16, 16, 3, padding=1) for _ in range(2))
        self.styles = nn.ModuleList(nn.Linear(8, 16) for _ in range(2))
        self.rgb = nn.Conv2d(16, 3, 1)
        with torch.no_grad():  # high-contrast images, so that the latent is visible in them
            self.fc.weight.mul_(3.0)
            self.rgb.weight.mul_(4.0)
        self.eval().requires_grad_(False)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return z + 0.5 * torch.tanh(self.map(z))

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_w_plus(w_plus)
        x = torch.relu(self.fc(w_plus[:, 0])).view(-1, 16, 4, 4)
        for i, (conv, style) in enumerate(zip(self.convs, self.styles), start=1):
            x = nn.functional.interpolate(x, scale_factor=2.0)
            x = torch.relu(conv(x) * (1 + style(w_plus[:, i]))[:, :, None, None])
        return torch.tanh(self.rgb(x))


@pytest.fixture(scope="module")
def tiny() -> TinyGenerator:
    return TinyGenerator()


def _targets(g: StyleGenerator, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    w = sample_latents(g, n, mix_prob=1.0, rng=rng)
    return w, g.synthesis(w)


def test_layer_groups_cover_every_offset_layer():
    assert layer_groups(5) == [[1, 2], [3], [4]]
    assert layer_groups(1) == [[], [], []]
    assert sum(layer_groups(14), []) == list(range(1, 14))


def test_encoder_shapes_and_w0_plus_offsets(tiny):
    enc = E4EEncoder.for_generator(tiny)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    w0, deltas = enc.forward_parts(x)
    assert w0.shape == (2, 8) and deltas.shape == (2, 3, 8) and w0.dtype == torch.float32
    assert torch.equal(deltas[:, 0], torch.zeros(2, 8))
    assert torch.allclose(enc(x), w0[:, None] + deltas)
    # offsets start at zero; with one unlocked layer only w_0 is used
    assert torch.allclose(deltas, torch.zeros_like(deltas))
    assert layer_groups(3) == [[1], [2], []]
    torch.nn.init.normal_(enc.heads[1].linear.weight)
    enc.num_active.fill_(2)
    assert enc.forward_parts(x)[1].abs().sum() == 0  # layer 2 (medium group) still locked
    enc.num_active.fill_(3)
    assert enc.forward_parts(x)[1][:, 2].abs().sum() > 0
    assert E4EEncoder.delta_norm(enc.forward_parts(x)[1]).shape == (2,)
    with pytest.raises(BadInput):
        enc(torch.zeros(1, 3, 32, 32))


def test_encoder_64px_layout_and_size():
    enc = E4EEncoder(5, 100)
    assert enc(torch.zeros(1, 3, 64, 64)).shape == (1, 5, 100)
    assert sum(p.numel() for p in enc.parameters()) < 1.5e6  # a few MB of float32


def test_encoder_save_load_roundtrip_and_bad_checkpoints(tiny, tmp_path):
    enc = E4EEncoder.for_generator(tiny)
    torch.nn.init.normal_(enc.heads[0].linear.weight, std=0.1)
    p = tmp_path / "enc.safetensors"
    save_encoder(enc, p)
    back = load_encoder(p, generator=tiny)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(back(x), enc.eval()(x))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError):
        load_encoder(bad)
    with pytest.raises(CheckpointError):
        load_encoder(tmp_path / "missing.safetensors")
    other = StyleGenerator()
    other.num_ws, other.w_dim, other.resolution, other.name = 4, 8, 16, "other"
    with pytest.raises(CheckpointError, match="needs"):
        load_encoder(p, generator=other)


def test_lr_schedule_ramps():
    assert lr_at(0, 100, 0.1) == pytest.approx(0.1 * 0.2)
    assert lr_at(50, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(99, 100, 0.1) < 0.001


def test_optimisation_lowers_reconstruction_error(tiny):
    _, x = _targets(tiny, 3, seed=1)
    start = invert_optimize(tiny, x, steps=0, loss=PIXEL)
    res = invert_optimize(tiny, x, steps=60, loss=PIXEL, lr=0.1)
    assert res.w_plus.shape == (3, 3, 8) and res.w_plus.dtype == torch.float32
    assert res.images.shape == (3, 3, 16, 16)
    assert len(res.history) == 60
    assert (res.loss < 0.5 * start.loss).all(), (start.loss, res.loss)
    # single-w space: every layer holds the same vector
    rw = invert_optimize(tiny, x, steps=20, space="w", loss=PIXEL)
    assert torch.allclose(rw.w_plus[:, 0], rw.w_plus[:, 2])
    with pytest.raises(BadInput):
        invert_optimize(tiny, x, space="z")
    with pytest.raises(BadInput):
        invert_optimize(tiny, x[:, :, :8])


def test_tied_wplus_moves_like_single_w_then_unties(tiny):
    _, x = _targets(tiny, 2, seed=3)
    kw = dict(loss=PIXEL, noise=0.05, lr=0.1, seed=3)
    tied = invert_optimize(tiny, x, steps=12, space="wplus", tie=1.0, **kw)
    single = invert_optimize(tiny, x, steps=12, space="w", **kw)  # same exploration noise draws
    assert torch.allclose(tied.w_plus[:, 0], tied.w_plus[:, 2])  # layers never separate
    assert torch.allclose(tied.w_plus, single.w_plus, atol=1e-4)  # Adam is scale-free: same steps as single w
    half = invert_optimize(tiny, x, steps=12, space="wplus", tie=0.5, **kw)
    assert not torch.allclose(half.w_plus[:, 0], half.w_plus[:, 2], atol=1e-4)  # free after half the steps
    with pytest.raises(BadInput):
        invert_optimize(tiny, x, steps=2, tie=1.5)


def test_batched_optimisation_equals_per_image(tiny):
    _, x = _targets(tiny, 2, seed=2)
    both = invert_optimize(tiny, x, steps=10, loss=PIXEL, noise=0.0)
    one = invert_optimize(tiny, x[1:], steps=10, loss=PIXEL, noise=0.0)
    assert torch.allclose(both.w_plus[1], one.w_plus[0], atol=1e-5)


def test_hybrid_is_no_worse_than_encoder(tiny):
    torch.manual_seed(0)
    enc = E4EEncoder.for_generator(tiny)
    torch.nn.init.normal_(enc.heads[0].linear.weight, std=0.05)
    _, x = _targets(tiny, 4, seed=3)
    e = invert(x, "encoder", generator=tiny, encoder=enc, with_stats=False)
    h = invert(x, "hybrid", generator=tiny, encoder=enc, steps=15, loss=PIXEL, with_stats=False)
    err_e = (e.images - x).pow(2).flatten(1).mean(1)
    err_h = (h.images - x).pow(2).flatten(1).mean(1)
    assert (err_h <= err_e + 1e-7).all()
    assert err_h.mean() < 0.9 * err_e.mean()
    assert h.w_plus.shape == (4, 3, 8) and h.config["steps"] == 15
    with pytest.raises(BadInput):
        invert(x, "magic", generator=tiny, encoder=enc)


def _latent_error(enc: E4EEncoder, g: StyleGenerator) -> float:
    w, x = _targets(g, 64, seed=99)
    with torch.no_grad():
        return float((enc.eval()(x) - w).pow(2).mean())


def _cfg(**kw) -> EncoderTrainConfig:
    base = dict(
        steps=30, batch_size=8, teacher_fraction=0.0, perceptual_weight=0.0, identity_weight=0.0,
        lr=5e-3, progressive_every=0, checkpoint_every=10, seed=0,
    )
    base.update(kw)
    return EncoderTrainConfig(**base)


def test_training_reduces_latent_loss(tiny, tmp_path):
    from editable_deepsc.train.encoder import build_encoder

    before = _latent_error(build_encoder(tiny, None, seed=0), tiny)
    train_encoder(tmp_path / "run", _cfg(), tiny, progress=False, export=False)
    enc = build_encoder(tiny, None, seed=0)
    from editable_deepsc.train.checkpointing import load_training_state

    load_training_state(tmp_path / "run" / "checkpoint.safetensors", {"encoder": enc}, {})
    after = _latent_error(enc, tiny)
    assert after < 0.85 * before, (before, after)
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") == 3


def test_resume_matches_uninterrupted_run(tiny, tmp_path):
    from editable_deepsc.train.checkpointing import load_training_state
    from editable_deepsc.train.encoder import build_encoder

    cfg = _cfg(steps=6, checkpoint_every=2, progressive_every=2, mix_prob=0.5)
    train_encoder(tmp_path / "a", cfg, tiny, progress=False, export=False)
    stopped = train_encoder(tmp_path / "b", cfg, tiny, progress=False, export=False, stop_at=3)
    assert stopped["stopped"] and stopped["steps"] == 3
    train_encoder(tmp_path / "b", cfg, tiny, progress=False, export=False)
    encs = []
    for run in ("a", "b"):
        enc = build_encoder(tiny, None, seed=0)
        counters = load_training_state(tmp_path / run / "checkpoint.safetensors", {"encoder": enc}, {})
        assert counters["step"] == 6
        encs.append(enc.state_dict())
    for k in encs[0]:
        assert torch.allclose(encs[0][k], encs[1][k], atol=1e-6), k
    assert int(encs[0]["num_active"]) == unlocked_layers(5, 3, 2) == 3


def test_export_registers_card(tiny, tmp_path):
    import json

    (tmp_path / "zoo" / "weights").mkdir(parents=True)
    summary = train_encoder(
        tmp_path / "run", _cfg(steps=5), tiny, progress=False, export=True, export_dir=tmp_path / "zoo" / "weights",
        max_seconds=0.0,
    )
    assert summary["steps"] == 1 and summary["planned_steps"] == 5  # out of time after the first step
    card = json.loads((tmp_path / "zoo" / "cards" / "edsc-e4e-faces64.json").read_text())
    assert "1 of 5 steps" in card["source"]
    assert card["kind"] == "encoder" and card["config"]["num_ws"] == 3 and len(card["sha256"]) == 64
    assert "edsc train encoder" in card["source"] and "MIT" in card["licence"]
    enc = load_encoder(tmp_path / "zoo" / "weights" / "edsc-e4e-faces64.safetensors", generator=tiny)
    assert enc.num_ws == 3


def test_warm_start_from_training_checkpoint(tiny, tmp_path):
    from editable_deepsc.train.checkpointing import load_training_state
    from editable_deepsc.train.encoder import build_encoder

    train_encoder(tmp_path / "a", _cfg(steps=2), tiny, progress=False, export=False)
    ref = build_encoder(tiny, None, seed=5)
    load_training_state(tmp_path / "a" / "checkpoint.safetensors", {"encoder": ref}, {})
    warm = build_encoder(tiny, tmp_path / "a" / "checkpoint.safetensors", seed=5)
    assert torch.equal(warm.head0.linear.weight, ref.head0.linear.weight)
    with pytest.raises(CheckpointError):
        build_encoder(tiny, tmp_path / "nope.safetensors", seed=0)
