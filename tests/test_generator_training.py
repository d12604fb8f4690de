"""edsc-faces64 training: style mixing, band targets, resumable deterministic steps, CLI registration."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from editable_deepsc.cli import main
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.faces64 import Faces64Generator
from editable_deepsc.generator.teacher import face_latents, load_teacher
from editable_deepsc.train.discriminator import FaceDiscriminator
from editable_deepsc.train.generator import (
    GeneratorTrainConfig,
    band_target,
    lowpass,
    mix_styles,
    train_faces64,
)


def test_mix_styles_layers():
    a, b = torch.zeros(3, 4), torch.ones(3, 4)
    w = mix_styles(a, b, torch.tensor([1, 3, 5]), 5)
    assert w.shape == (3, 5, 4)
    assert w[0, :, 0].tolist() == [0, 1, 1, 1, 1]
    assert w[1, :, 0].tolist() == [0, 0, 0, 1, 1]
    assert w[2, :, 0].tolist() == [0, 0, 0, 0, 0]


def test_band_target_splits_frequencies():
    g = torch.Generator().manual_seed(0)
    xa, xb = torch.randn(4, 3, 64, 64, generator=g), torch.randn(4, 3, 64, 64, generator=g)
    k = torch.tensor([5, 1, 2, 4])
    t = band_target(xa, xb, k, 5)
    assert torch.equal(t[0], xa[0])  # unmixed: the teacher face itself
    pool = torch.nn.functional.adaptive_avg_pool2d
    for i, r in ((1, 4), (2, 8), (3, 32)):
        torch.testing.assert_close(t[i], (lowpass(xa[i : i + 1], r) + xb[i : i + 1] - lowpass(xb[i : i + 1], r))[0])
        # at the crossover scale the target looks like A, not like B
        coarse = pool(t[i : i + 1], r)
        assert (coarse - pool(xa[i : i + 1], r)).abs().mean() < (coarse - pool(xb[i : i + 1], r)).abs().mean()
    assert torch.equal(lowpass(xa, 64), xa)


def test_discriminator_shape():
    assert FaceDiscriminator()(torch.zeros(2, 3, 64, 64)).shape == (2,)


def test_from_teacher_is_exact_and_styles_start_inert():
    t = load_teacher()
    g = Faces64Generator.from_teacher(t)
    z = face_latents([1, 2])
    w_plus = g.broadcast(g.mapping(z)).clone()
    w_plus[:, 1:] = torch.randn(2, 4, 100)  # per-layer styles have no effect before training
    with torch.no_grad():
        torch.testing.assert_close(g.synthesis(w_plus), t(z), atol=1e-5, rtol=0)


def test_config_validation():
    with pytest.raises(BadInput):
        GeneratorTrainConfig(mix_prob=1.5).validate()
    with pytest.raises(BadInput):
        GeneratorTrainConfig(steps=0).validate()


def test_resume_equals_uninterrupted_run(tmp_path):
    """2 steps at once == 1 step, stop, resume to 2 (seeded per step, Adam state restored)."""
    cfg = dict(batch_size=4, checkpoint_every=1, seed=3)
    a = train_faces64(tmp_path / "a", GeneratorTrainConfig(steps=2, **cfg), progress=False, export=False)
    train_faces64(tmp_path / "b", GeneratorTrainConfig(steps=1, **cfg), progress=False, export=False)
    b = train_faces64(tmp_path / "b", GeneratorTrainConfig(steps=2, **cfg), progress=False, export=False)
    sa = load_file(str(tmp_path / "a" / "checkpoint.safetensors"))
    sb = load_file(str(tmp_path / "b" / "checkpoint.safetensors"))
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], atol=1e-5, rtol=1e-4, msg=k)
    assert a["final"]["l1_mix"] == pytest.approx(b["final"]["l1_mix"], rel=1e-4)
    styles = [v for k, v in sa.items() if k.startswith("module.g.") and ".style_" in k]
    assert max(float(v.abs().max()) for v in styles) > 0  # the styles started to learn
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_cli_trainer_registered(tmp_path):
    assert main(["train", "generator", "--workdir", str(tmp_path / "w"), "--steps", "1", "--batch-size", "2",
                 "--no-export", "--quiet"]) == 0  # fmt: skip
    assert (tmp_path / "w" / "checkpoint.safetensors").is_file()
    assert main(["train", "generator", "--workdir", str(tmp_path / "w"), "--steps", "0", "--no-export"]) == 2
