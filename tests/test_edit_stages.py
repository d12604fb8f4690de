"""The stages of an edit (start strategies, the shared refinement loop) and the shared latent sampling/scoring of
the direction and critic fits (tiny generator, toy guidance)."""

from __future__ import annotations

import pytest
import torch
from edit_toys import TinyGenerator, ToyGuidance, target

from editable_deepsc.editing.config import EditConfig, edit_config
from editable_deepsc.editing.editor import Editor
from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.refine import refine
from editable_deepsc.editing.starts import STRATEGIES, Start, start_from_directions, start_from_origin
from editable_deepsc.errors import BadInput
from editable_deepsc.train.critic_data import score_groups
from editable_deepsc.train.directions import fit_directions
from editable_deepsc.train.latents import EMBEDDING, sample_latents, score_latents


class FaceToy(ToyGuidance):
    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :128] * 2.0


@pytest.fixture(scope="module")
def gen_():
    return TinyGenerator(0)


@pytest.fixture(scope="module")
def dirs(gen_):
    return fit_directions(gen_, ToyGuidance(), n=300, seed=3, attributes=("happy", "yaw", "age"), mode="layerwise")


def _problem(gen_, config: EditConfig, w0: torch.Tensor, directions=None, critic=None) -> EditProblem:
    ed = Editor(gen_, ToyGuidance(), config=config, directions=directions, critic=critic)
    return ed._pose(w0, [target("happy")], 1.0, None, None, None)


def test_every_init_has_one_start_strategy():
    from typing import get_args

    from editable_deepsc.editing.config import PRESETS, Init

    assert set(STRATEGIES) == set(get_args(Init)) == {p.init for p in PRESETS.values()}


def test_origin_start_and_direction_start_without_directions_start_at_w0(gen_):
    w0 = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(0))
    for start in (start_from_origin(_problem(gen_, edit_config("paper"), w0)),
                  start_from_directions(_problem(gen_, edit_config("fast"), w0))):  # fmt: skip
        assert torch.equal(start.w, w0) and start.w is not w0
        assert start.alpha.shape == (4, 1) and not start.alpha.any() and start.met is None and not start.final


def test_direction_start_jumps_towards_the_target_and_reports_what_it_met(gen_, dirs):
    w0 = torch.randn(6, 3, 8, generator=torch.Generator().manual_seed(1))
    p = _problem(gen_, edit_config("fast"), w0, directions=dirs)
    start = start_from_directions(p)
    g = ToyGuidance()
    before = g.measure(gen_.synthesis(w0), ("happy",))["happy"]
    after = g.measure(gen_.synthesis(start.w), ("happy",))["happy"]
    assert (start.alpha >= 0).all() and (after > before).all()
    assert start.met.shape == (6, 1) and start.finished.shape == (6,)
    assert torch.equal(start.finished, start.met.all(1))  # no identity bound configured


def test_refinement_skips_samples_the_start_finished(gen_):
    w0 = torch.randn(3, 3, 8, generator=torch.Generator().manual_seed(2))
    p = _problem(gen_, edit_config("paper", steps=5), w0)
    shifted = w0 + 0.3
    done = torch.tensor([True, False, True])
    out = refine(p, Start(shifted, torch.zeros(3, 1), met=done[:, None], finished=done))
    assert torch.equal(out.w[done], shifted[done]) and out.steps[done].tolist() == [0, 0]
    assert not torch.equal(out.w[1], shifted[1]) and out.steps[1] > 0


def test_critic_start_refuses_without_critic(gen_):
    with pytest.raises(BadInput, match="latent critic"):
        Editor(gen_, ToyGuidance(), config="instant").edit(torch.zeros(1, 3, 8), target("happy"))


def test_sample_latents_mixing_only_changes_mixed_layers(gen_):
    plain = sample_latents(gen_, 50, torch.Generator().manual_seed(4))
    mixed = sample_latents(gen_, 50, torch.Generator().manual_seed(4), mix_prob=0.5)
    assert plain.shape == (50, 3, 8) and torch.equal(plain[:, 0], plain[:, 2])
    assert torch.equal(mixed[:, 0], plain[:, 0])  # the first z is drawn first either way
    changed = (mixed != plain).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 40
    again = sample_latents(gen_, 50, torch.Generator().manual_seed(4), mix_prob=0.5)
    assert torch.equal(mixed, again)


def test_critic_scores_are_the_direction_scores_on_the_regression_scale(gen_):
    w = sample_latents(gen_, 12, torch.Generator().manual_seed(5)).reshape(4, 3, 3, 8)
    g = FaceToy()
    s = score_latents(gen_, g, w.flatten(0, 1), ("happy", "age"), batch_size=5, embedding=True)
    y, e = score_groups(gen_, g, w, ("happy", "age"), batch_size=7)
    p = s["happy"].clamp(0.01, 0.99)
    assert torch.allclose(y[..., 0].flatten(), torch.log(p) - torch.log1p(-p), atol=1e-6)
    assert torch.allclose(y[..., 1].flatten(), s["age"], atol=1e-5)
    assert torch.allclose(e.flatten(0, 1), s[EMBEDDING], atol=1e-6)
    assert torch.allclose(s[EMBEDDING], g.embedding(gen_.synthesis(w.flatten(0, 1))), atol=1e-6)
    assert set(score_latents(gen_, g, w[0], ("age",))) == {"age"}  # descriptors only when asked
