"""The semantic editing module on a tiny generator with a differentiable toy guidance (no weights)."""

from __future__ import annotations

import pytest
import torch
from edit_toys import TinyGenerator, ToyGuidance, target
from torch import nn

from editable_deepsc.cli import main
from editable_deepsc.editing.config import PRESETS, EditConfig, edit_config
from editable_deepsc.editing.criteria import goal_value, keep_attributes, target_met
from editable_deepsc.editing.directions import AttributeDirections
from editable_deepsc.editing.editor import Editor, edit
from editable_deepsc.editing.support import SupportTable
from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.text.targets import EditTarget, ParsedInstruction
from editable_deepsc.train.directions import fit_directions


@pytest.fixture(scope="module")
def gen_():
    return TinyGenerator()


@pytest.fixture(scope="module")
def w0():
    return torch.randn(6, 3, 8, generator=torch.Generator().manual_seed(1))


def cfg(**kw) -> EditConfig:
    base = dict(steps=80, lr=0.1, schedule="constant", lambda_l2=0.01, lambda_keep=0.0)
    base.update(kw)
    return EditConfig(**base)


# ---------------------------------------------------------------- config and criteria
def test_presets_and_bad_config():
    assert edit_config("paper").steps >= 200 and edit_config("fast").init == "direction"
    assert edit_config("instant").init == "critic" and not edit_config("instant").verify
    assert edit_config("FAST", steps=3).steps == 3
    with pytest.raises(BadInput):
        edit_config("turbo")
    with pytest.raises(BadInput):
        edit_config("paper", nonsense=1)
    with pytest.raises(BadInput):
        EditConfig(lr=-1.0)
    with pytest.raises(BadInput):
        EditConfig(schedule="linear")


def test_cosine_schedule_warms_up_peaks_and_ramps_down():
    c = PRESETS["paper"]
    lrs = [c.lr_at(i) for i in range(c.steps)]
    assert lrs[0] < 0.2 * c.lr
    assert max(lrs) == pytest.approx(c.lr)
    assert lrs[-1] < 0.01 * c.lr
    assert EditConfig(schedule="constant", lr=0.3).lr_at(17) == 0.3


def test_goal_values_per_attribute():
    v0 = torch.tensor([0.1, 0.6, 0.97])
    assert goal_value(EditTarget("happy", "more"), v0).tolist() == pytest.approx([0.5, 0.7, 0.95])
    assert goal_value(EditTarget("happy", "more", 2.0), v0)[0] == pytest.approx(0.75)
    assert goal_value(EditTarget("happy", "less"), v0).tolist() == pytest.approx([0.05, 0.5, 0.5])
    assert goal_value(EditTarget("age", "more", 2.0), torch.tensor([30.0])).item() == pytest.approx(46.0)
    assert goal_value(EditTarget("age", "more", amount=20.0), torch.tensor([30.0])).item() == pytest.approx(50.0)
    met = target_met(EditTarget("yaw", "less"), torch.zeros(3), torch.tensor([-11.0, -9.0, 5.0]))
    assert met.tolist() == [True, False, False]
    assert target_met(EditTarget("age", "set", amount=40.0), torch.zeros(2), torch.tensor([42.0, 46.0])).tolist() == [
        True,
        False,
    ]


def test_keep_skips_named_and_coupled():
    keep = keep_attributes(("happy",))
    assert "happy" not in keep and "mouth_open" not in keep and "surprised" not in keep
    assert "age" in keep and "yaw" in keep
    assert "yaw" not in keep_attributes(("yaw",))


# ---------------------------------------------------------------- the optimisation
def test_loss_decreases_and_target_is_met(gen_, w0):
    r = Editor(gen_, ToyGuidance(), config=cfg(early_stop=False, steps=40)).edit(w0, target("happy"))
    assert len(r.loss_history) == 40
    assert r.loss_history[-1] < r.loss_history[0] - 1.0
    assert bool(r.met.all())
    assert (r.values_after["happy"] > r.values_before["happy"] + 0.1).all()


def test_early_stop_per_sample(gen_, w0):
    ed = Editor(gen_, ToyGuidance(), config=cfg(steps=200))
    r = ed.edit(w0, target("happy"))
    assert bool(r.met.all())
    assert int(r.steps.max()) < 200  # every sample stopped early
    assert len(set(r.steps.tolist())) > 1  # and not all at the same step
    # a stopped sample just meets its goal: it was not pushed further
    goal = goal_value(EditTarget("happy", "more"), r.values_before["happy"])
    assert (r.values_after["happy"] - goal).max() < 0.25
    r2 = Editor(gen_, ToyGuidance(), config=cfg(steps=60, early_stop=False)).edit(w0, target("happy"))
    assert (r2.steps == 60).all()
    assert (r2.values_after["happy"] > r.values_after["happy"]).all()


def test_l2_keeps_w_close(gen_, w0):
    far = Editor(gen_, ToyGuidance(), config=cfg(steps=40, early_stop=False, lambda_l2=0.0)).edit(w0, target("yaw"))
    near = Editor(gen_, ToyGuidance(), config=cfg(steps=40, early_stop=False, lambda_l2=1.0)).edit(w0, target("yaw"))
    d_far = (far.w_plus - w0).norm(dim=(1, 2))
    d_near = (near.w_plus - w0).norm(dim=(1, 2))
    assert (d_near < 0.7 * d_far).all()


def test_batch_equals_one_by_one_and_multi_target(gen_, w0):
    ed = Editor(gen_, ToyGuidance(), config=cfg(steps=100))
    targets = ParsedInstruction("smile and turn left", (target("happy"), target("yaw", "less")))
    rb = ed.edit(w0, targets)
    assert rb.target_met.shape == (6, 2)
    assert bool(rb.met.float().mean() >= 0.8)
    assert ((rb.values_after["yaw"] < rb.values_before["yaw"]) & (rb.values_after["happy"] > rb.values_before["happy"]))[
        rb.met
    ].all()
    for i in (0, 3):
        ri = ed.edit(w0[i : i + 1], targets)
        assert torch.allclose(ri.w_plus[0], rb.w_plus[i], atol=1e-4)
        assert int(ri.steps[0]) == int(rb.steps[i])


def test_strength_is_monotone(gen_, w0):
    ed = Editor(gen_, ToyGuidance(), config=cfg(steps=150))
    changes = []
    for s in (0.5, 1.0, 1.5):
        r = ed.edit(w0, target("age"), strength=s)
        changes.append((r.values_after["age"] - r.values_before["age"]).mean().item())
    assert changes[0] < changes[1] < changes[2]
    assert changes[0] >= 4.0  # strength 0.5 of a unit edit of 8 years


def test_keep_term_holds_unnamed_attribute(gen_, w0):
    free = Editor(gen_, ToyGuidance(), config=cfg(steps=40, early_stop=False, lambda_keep=1e-9)).edit(w0, target("happy"))
    kept = Editor(gen_, ToyGuidance(), config=cfg(steps=40, early_stop=False, lambda_keep=5.0)).edit(w0, target("happy"))
    drift_free = (free.values_after["yaw"] - free.values_before["yaw"]).abs().mean()
    drift_kept = (kept.values_after["yaw"] - kept.values_before["yaw"]).abs().mean()
    assert "yaw" in kept.values_after
    assert drift_kept < 0.5 * drift_free


def test_layers_option_freezes_other_layers(gen_, w0):
    r = Editor(gen_, ToyGuidance(), config=cfg(steps=20, early_stop=False, layers=(1,))).edit(w0, target("happy"))
    assert torch.equal(r.w_plus[:, 0], w0[:, 0]) and torch.equal(r.w_plus[:, 2], w0[:, 2])
    assert not torch.equal(r.w_plus[:, 1], w0[:, 1])


# ---------------------------------------------------------------- bad input and refusal
def test_nan_inf_latent_refused(gen_, w0):
    ed = Editor(gen_, ToyGuidance(), config=cfg())
    for bad in (float("nan"), float("inf")):
        w = w0.clone()
        w[2, 1, 3] = bad
        with pytest.raises(BadInput, match="NaN or inf"):
            ed.edit(w, target("happy"))
    with pytest.raises(BadInput):
        ed.edit(w0[:, :2], target("happy"))  # wrong number of layers
    with pytest.raises(BadInput):
        ed.edit(w0, target("happy"), strength=0.0)
    with pytest.raises(BadInput):
        ed.edit(w0, [])


def _table() -> SupportTable:
    entries = {
        "happy:more": {"success": 0.9, "met": 0.9, "identity": 0.8, "n": 100, "supported": True},
        "yaw:more": {"success": 0.8, "met": 0.8, "identity": 0.8, "n": 100, "supported": True},
        "yaw:less": {"success": 0.75, "met": 0.8, "identity": 0.8, "n": 100, "supported": True},
        "age:more": {"success": 0.31, "met": 0.5, "identity": 0.5, "n": 100, "supported": False},
    }
    return SupportTable("tiny", 0.6, 0.45, entries)


def test_unsupported_attribute_refused_with_numbers(gen_, w0, tmp_path):
    table = _table()
    ed = Editor(gen_, ToyGuidance(), config=cfg(), support=table)
    with pytest.raises(UnsupportedInstruction) as e:
        ed.edit(w0, [target("happy"), target("age")])
    msg = str(e.value)
    assert "31%" in msg and "smile" in msg and "happy:more" in msg
    assert e.value.supported == ["happy:more", "yaw:more", "yaw:less"]
    with pytest.raises(UnsupportedInstruction, match="not measured"):
        ed.edit(w0, target("happy", "less"))
    assert ed.edit(w0[:2], target("happy")).met.all()
    assert table.is_supported(EditTarget("yaw", "set", amount=5.0))
    assert not table.is_supported(EditTarget("age", "set", amount=5.0))
    p = table.save(tmp_path / "s.json")
    assert SupportTable.load(p).entries == table.entries
    with pytest.raises(BadInput):
        SupportTable.load(tmp_path / "missing.json")


# ---------------------------------------------------------------- directions and the fast preset
def test_directions_fit_save_load_and_fast_preset(gen_, w0, tmp_path):
    d = fit_directions(gen_, ToyGuidance(), n=400, seed=3, attributes=("happy", "yaw", "age"), mode="layerwise")
    assert d.stats["age"]["r2"] > 0.8 and d.slope("age") > 0
    p = tmp_path / "dirs.safetensors"
    d.save(p)
    d2 = AttributeDirections.load(p)
    assert torch.equal(d2.vector("yaw"), d.vector("yaw")) and d2.slope("yaw") == pytest.approx(d.slope("yaw"))
    paper = Editor(gen_, ToyGuidance(), config=cfg(steps=200)).edit(w0, target("age"))
    fast = Editor(gen_, ToyGuidance(), config=edit_config("fast", lambda_keep=0.0), directions=d).edit(w0, target("age"))
    assert fast.met.float().mean() >= paper.met.float().mean() - 0.2
    assert fast.steps.float().mean() < 0.3 * paper.steps.float().mean()
    assert (fast.alpha[:, 0] > 0).all()
    # larger strength: larger jump
    fast2 = Editor(gen_, ToyGuidance(), config=edit_config("fast", steps=0), directions=d).edit(w0, target("age"), strength=2)
    assert (fast2.alpha[:, 0] > fast.alpha[:, 0]).all()


def test_identity_metric_matches_the_exact_jacobian(gen_):
    from editable_deepsc.train.directions import identity_metric

    proj = torch.randn(5, 3 * 8 * 8, generator=torch.Generator().manual_seed(2)) * 0.2

    def embed(images):
        return images.flatten(1) @ proj.T

    w = torch.randn(1, 8, generator=torch.Generator().manual_seed(4))
    jac = torch.autograd.functional.jacobian(lambda x: embed(gen_.synthesis(gen_.broadcast(x[None])))[0], w[0])
    exact = (jac.T @ jac).double()  # (8, 8)
    est = identity_metric(gen_, embed, gen_.broadcast(w.repeat(4000, 1)), mode="shared", batch_size=500, seed=1)
    assert est.shape == (8, 8)
    assert float((est - exact).norm() / exact.norm()) < 0.1  # 4000 random probes of J^T J


def test_identity_aware_direction_trades_attribute_for_identity():
    from editable_deepsc.train.directions import identity_aware

    metric = torch.diag(torch.tensor([100.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    beta = torch.tensor([1.0, 1.0, 0.0, 0.0])
    costs = []
    for mu in (1e6, 10.0, 1.0, 0.1):  # 1e6 ~ the plain direction
        d = identity_aware(beta, metric, mu).double()
        assert d.norm().item() == pytest.approx(1.0, abs=1e-6)
        costs.append(float(d @ metric @ d / (d @ beta.double()) ** 2))  # identity change per unit attribute change
    assert identity_aware(beta, metric, 1e6).tolist() == pytest.approx([2**-0.5, 2**-0.5, 0, 0], abs=1e-4)
    assert costs == sorted(costs, reverse=True) and costs[-1] < 0.1 * costs[0]


def test_identity_aware_fit_keeps_the_causal_slope(gen_):
    proj = torch.randn(5, 3 * 8 * 8, generator=torch.Generator().manual_seed(2)) * 0.2

    def embed(images):
        return images.flatten(1) @ proj.T

    g = ToyGuidance()
    kw = dict(n=400, seed=3, attributes=("happy", "age"), mode="shared", n_cal=64)
    plain = fit_directions(gen_, g, **kw)
    aware = fit_directions(gen_, g, embed=embed, **kw)
    assert aware.meta["identity_aware"] and not plain.meta.get("identity_aware")
    from editable_deepsc.train.directions import _causal_slope

    cal = torch.randn(64, 8, generator=torch.Generator().manual_seed(9))
    cal = gen_.broadcast(cal)
    for a in ("happy", "age"):
        st = aware.stats[a]
        assert st["identity_cost"] <= st["identity_cost_plain"] + 1e-9
        # the stored vector is scaled so that one unit of alpha changes the attribute as the plain one does
        measured = _causal_slope(gen_, g, cal, aware.vector(a), a, 0.5, 64)
        assert measured == pytest.approx(aware.slope(a), rel=0.25)
        assert aware.slope(a) == plain.slope(a)


def test_directions_must_match_generator(gen_):
    d = AttributeDirections("other", 5, 100, {}, {})
    with pytest.raises(BadInput):
        Editor(gen_, ToyGuidance(), directions=d)


# ---------------------------------------------------------------- joint editing-channel coding
class HalvingLink(nn.Module):
    """A 'codec + channel' that delivers half the latent plus small noise (what the receiver decodes)."""

    def forward(self, w, channel, snr_db, rng=None):
        return 0.5 * w + 0.01 * torch.randn(w.shape, generator=rng)


def test_jecc_makes_the_receiver_side_meet_the_target(gen_, w0):
    ed = Editor(gen_, ToyGuidance(), config=cfg(steps=150, lambda_l2=0.001))
    g = torch.Generator().manual_seed(0)
    link = HalvingLink()
    plain = ed.edit(w0, target("yaw"))
    joint = ed.edit(w0, target("yaw"), through_channel=(link, nn.Identity(), 6.0), rng=g)
    assert joint.jecc and not plain.jecc

    def rx_yaw(w):
        return ToyGuidance().measure(gen_.synthesis(link(w, None, 6.0, torch.Generator().manual_seed(9))), ("yaw",))["yaw"]

    y0 = ToyGuidance().measure(gen_.synthesis(w0), ("yaw",))["yaw"]
    ok_plain = target_met(EditTarget("yaw", "more"), y0, rx_yaw(plain.w_plus)).float().mean()
    ok_joint = target_met(EditTarget("yaw", "more"), y0, rx_yaw(joint.w_plus)).float().mean()
    assert ok_joint >= 0.8 and ok_joint > ok_plain


def test_jecc_runs_through_the_real_codec_class(gen_, w0):
    from editable_deepsc.channel import AWGN
    from editable_deepsc.channel.codec import CodecConfig, SemanticCodec

    torch.manual_seed(0)
    codec = SemanticCodec(CodecConfig(num_ws=3, w_dim=8, k=8, hidden=16, depth=1)).requires_grad_(False)
    ed = Editor(gen_, ToyGuidance(), config=cfg(steps=5, channel_draws=3))
    r = ed.edit(w0[:2], target("happy"), through_channel=(codec, AWGN(), 6.0), rng=torch.Generator().manual_seed(1))
    assert r.jecc and r.w_plus.shape == (2, 3, 8) and torch.isfinite(r.w_plus).all()
    assert not torch.equal(r.w_plus, w0[:2])
    with pytest.raises(BadInput):
        ed.edit(w0[:2], target("happy"), through_channel=(codec, AWGN()))


def test_one_call_edit_and_summary(gen_, w0):
    r = edit(gen_, ToyGuidance(), w0[:2], target("happy"), config=cfg())
    s = r.summary()
    assert s["n"] == 2 and s["success_rate"] == 1.0 and s["preset"] == "custom"


def test_guidance_without_measure_uses_score_threshold(gen_, w0):
    class ScoreOnly:
        def __init__(self):
            self.t = ToyGuidance()

        def score(self, images, tgt, reference=None):
            return self.t.score(images, tgt, reference)

        def loss(self, images, tgt, reference=None):
            return self.t.loss(images, tgt, reference)

    r = Editor(gen_, ScoreOnly(), config=cfg(steps=100, score_threshold=5.0)).edit(w0, target("yaw"))
    assert r.met.all() and int(r.steps.max()) < 100 and r.values_after == {}
    r2 = Editor(gen_, ScoreOnly(), config=cfg(steps=10)).edit(w0, target("yaw"))
    assert (r2.steps == 10).all()


# ---------------------------------------------------------------- CLI bad input
def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["bench", "edit-support", "--n", "0", "--out", str(tmp_path / "o")]) == 2
    assert main(["bench", "edit", "--presets", "paper", "--out", str(tmp_path / "o")]) == 2
    assert main(["train", "directions", "--n", "5", "--workdir", str(tmp_path / "w")]) == 2
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the real face nets (built-in model set)
@pytest.mark.slow
def test_builtin_editor_makes_a_teacher_face_smile():
    pytest.importorskip("editable_deepsc.guidance.attributes")
    from editable_deepsc.editing.builtin import build_editor
    from editable_deepsc.eval.edit_bench import test_latents

    torch.manual_seed(0)
    ed = build_editor("paper", steps=25, use_support=False, use_directions=False)
    w0 = test_latents(ed.generator, 2, offset=0)
    r = ed.edit(w0, EditTarget("happy", "more"))
    gain = r.values_after["happy"] - r.values_before["happy"]
    assert r.met.all(), r.summary()
    assert (gain > 0.1).all() and (r.values_after["happy"] >= 0.5).all()
    dist = ed.guidance.identity_distance(r.images, ed.generator.synthesis(w0))
    assert (dist < 0.45).all()
    assert set(r.values_after) >= {"happy", "age", "yaw"}  # named + kept attributes reported


def test_subspace_edit_stays_in_the_span(gen_, w0):
    from editable_deepsc.editing.subspace import project

    d = fit_directions(gen_, ToyGuidance(), n=400, seed=3, attributes=("yaw",), mode="layerwise")
    dim = gen_.num_ws * gen_.w_dim
    q = torch.randn(dim, 6, generator=torch.Generator().manual_seed(5))
    basis, _ = torch.linalg.qr(torch.cat([d.vector("yaw").reshape(dim, 1), q], 1))  # orthonormal, holds the yaw axis
    ed = Editor(gen_, ToyGuidance(), config=edit_config("fast", lambda_keep=0.0, steps=20), directions=d)
    res = ed.edit(w0, target("yaw"), subspace=basis)
    delta = res.w_plus - w0
    assert torch.allclose(project(delta, basis), delta, atol=1e-4)  # nothing outside the span
    assert res.met.float().mean() >= 0.8
    free = ed.edit(w0, target("yaw"))
    refined = free.steps > 0  # faces that took gradient steps after the jump
    assert refined.sum() >= 3
    outside = (free.w_plus - w0) - project(free.w_plus - w0, basis)
    assert outside[refined].norm(dim=(1, 2)).min() > 1e-3  # the free edit does leave the span
    with pytest.raises(BadInput):
        ed.edit(w0, target("yaw"), subspace=torch.ones(dim, 2))  # not orthonormal
    with pytest.raises(BadInput):
        ed.edit(w0, target("yaw"), subspace=basis[:5])


def test_identity_distance_bound_delays_the_stop(gen_, w0):
    """With ``max_id_distance`` a face stops only once the editor's identity distance is within the bound."""

    def distance(images, reference):  # a toy "descriptor distance": mean absolute pixel change x 10
        return 10.0 * (images - reference).abs().mean((1, 2, 3))

    base = cfg(steps=120, lambda_id=0.0)
    free = Editor(gen_, ToyGuidance(), config=base).edit(w0, target("age"))
    assert free.met.all()
    with torch.no_grad():
        d_free = distance(free.images, gen_.synthesis(w0))
    bound = float(d_free.median())
    ed = Editor(gen_, ToyGuidance(), config=base.with_(max_id_distance=bound, lambda_l2=0.05),
                identity_distance=distance)
    res = ed.edit(w0, target("age"))
    with torch.no_grad():
        d = distance(res.images, gen_.synthesis(w0))
    stopped = res.steps < base.steps  # stopped early: targets met and within the bound
    assert stopped.any()
    assert (d[stopped] <= bound + 1e-6).all()
    with pytest.raises(BadInput):
        EditConfig(max_id_distance=-1.0)
