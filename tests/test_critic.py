"""The latent critic and the instant preset that edits against it (tiny generator, toy guidance)."""

from __future__ import annotations

import pytest
import torch
from edit_toys import TinyGenerator, ToyGuidance, target

from editable_deepsc.editing.config import edit_config
from editable_deepsc.editing.critic import LatentCritic, load_critic, save_metadata
from editable_deepsc.editing.editor import Editor
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.eval.edit_bench import run_instruction
from editable_deepsc.train.critic_data import CriticData, critic_groups, score_groups
from editable_deepsc.train.critic_fit import critic_errors, fit
from editable_deepsc.train.directions import fit_directions
from editable_deepsc.zoo.registry import save_state_dict

TOY_ATTRIBUTES = ("happy", "yaw", "age")


class ToyFaceGuidance(ToyGuidance):
    """The toy guidance with a 128-d "descriptor": a fixed random projection of the image."""

    def __init__(self) -> None:
        self.proj = torch.randn(3 * 8 * 8, 128, generator=torch.Generator().manual_seed(11)) / 8.0

    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ self.proj


@pytest.fixture(scope="module")
def gen_():
    return TinyGenerator()


@pytest.fixture(scope="module")
def dirs(gen_):
    return fit_directions(gen_, ToyGuidance(), n=400, seed=3, attributes=TOY_ATTRIBUTES, mode="layerwise")


@pytest.fixture(scope="module")
def trained(gen_, dirs, tmp_path_factory):
    """A critic fitted on 400 toy groups (360 train, 40 held out) and its held-out errors."""
    torch.manual_seed(0)
    w = critic_groups(gen_, dirs, 400, 4, seed=1)
    y, e = score_groups(gen_, ToyFaceGuidance(), w, TOY_ATTRIBUTES)
    critic = LatentCritic(gen_.num_ws, gen_.w_dim, hidden=64, depth=2, attributes=TOY_ATTRIBUTES, dropout=0.0)
    ckpt = tmp_path_factory.mktemp("critic") / "fit.safetensors"
    errors = fit(CriticData(w, y, e), critic, steps=500, batch=64, lr=3e-3, n_val=40, seed=0, checkpoint=ckpt,
                 progress=False, weight_decay=1e-4)  # the toy readings are exact: no regularisation needed
    return critic, errors


TOY_ID = 0.002
"""Identity weight for the toy descriptor (its distances are ~40x face-api's)."""


@pytest.fixture(scope="module")
def w0():
    return torch.randn(24, 3, 8, generator=torch.Generator().manual_seed(1))


def test_groups_hold_a_base_and_its_variants(gen_, dirs):
    w = critic_groups(gen_, dirs, 10, 4, seed=2)
    assert w.shape == (10, 5, 3, 8)
    moved = (w[:, 1:] - w[:, :1]).flatten(2).norm(dim=2)
    assert (moved > 0).all()  # every variant differs from its base
    assert torch.equal(w, critic_groups(gen_, dirs, 10, 4, seed=2))  # seeded


def test_critic_learns_the_readings_and_distances(trained):
    critic, errors = trained
    for a in TOY_ATTRIBUTES:
        assert errors["attributes"][a]["r2"] > 0.9, errors["attributes"]
    assert errors["distance"]["corr"] > 0.9
    assert torch.allclose(critic.residual_std[:-1], torch.tensor(
        [errors["attributes"][a]["residual_std"] for a in TOY_ATTRIBUTES]))  # fmt: skip
    assert critic.distance_error == pytest.approx(errors["distance"]["residual_std"])


def test_untrained_critic_is_worse(gen_, dirs, trained):
    w = critic_groups(gen_, dirs, 40, 4, seed=9)
    y, e = score_groups(gen_, ToyFaceGuidance(), w, TOY_ATTRIBUTES)
    fresh = LatentCritic(gen_.num_ws, gen_.w_dim, hidden=64, depth=2, attributes=TOY_ATTRIBUTES)
    bad = critic_errors(fresh, CriticData(w, y, e))
    good = critic_errors(trained[0], CriticData(w, y, e))
    assert good["attributes"]["age"]["r2"] > bad["attributes"]["age"]["r2"] + 0.5


def test_instant_preset_meets_the_target_without_measuring(gen_, dirs, trained, w0):
    critic = trained[0]
    calls = {"n": 0}

    class Counting(ToyFaceGuidance):
        def measure(self, images, attributes):
            calls["n"] += 1
            return super().measure(images, attributes)

    ed = Editor(gen_, Counting(), config=edit_config("instant", critic_id_weight=TOY_ID), directions=dirs, critic=critic)
    r = ed.edit(w0, target("age"))
    assert calls["n"] == 0 and not r.verified and (r.steps == 0).all()
    g = ToyGuidance()
    with torch.no_grad():
        v0 = g.measure(gen_.synthesis(w0), ("age",))["age"]
        v1 = g.measure(r.images, ("age",))["age"]
    real = v1 - v0 >= 8.0  # the age criterion, judged on the output images
    assert real.float().mean() >= 0.9
    assert (r.met == real).float().mean() >= 0.8  # the prediction mostly agrees with the judge
    # a heavier identity term keeps the descriptor closer (and gets less of the edit)
    strict = Editor(gen_, ToyFaceGuidance(), config=edit_config("instant", critic_id_weight=50 * TOY_ID), directions=dirs,
                    critic=critic).edit(w0, target("age"))
    emb = ToyFaceGuidance().embedding
    with torch.no_grad():
        ref = emb(gen_.synthesis(w0))
        d_loose, d_strict = (emb(r.images) - ref).norm(dim=1), (emb(strict.images) - ref).norm(dim=1)
        v_strict = g.measure(strict.images, ("age",))["age"]
    assert d_strict.mean() < 0.8 * d_loose.mean()
    assert (v_strict - v0).mean() < (v1 - v0).mean()


def test_instant_preset_verify_measures_and_refines(gen_, dirs, trained, w0):
    ed = Editor(gen_, ToyFaceGuidance(), config=edit_config("instant", verify=True, critic_margin=0.0, critic_steps=5,
                                                           critic_id_weight=TOY_ID),
                directions=dirs, critic=trained[0])
    r = ed.edit(w0, target("age"))
    assert r.verified
    with torch.no_grad():
        v1 = ToyGuidance().measure(r.images, ("age",))["age"]
    assert torch.allclose(v1, r.values_after["age"], atol=1e-4)  # reported values are measured ones
    assert r.met.float().mean() >= 0.9


def test_instant_preset_edits_several_targets_and_keeps_a_subspace(gen_, dirs, trained, w0):
    from editable_deepsc.editing.subspace import project

    ed = Editor(gen_, ToyFaceGuidance(), config=edit_config("instant", critic_id_weight=TOY_ID), directions=dirs,
                critic=trained[0])
    r = ed.edit(w0, [target("age"), target("yaw")])
    assert r.target_met.shape == (24, 2) and r.met.float().mean() >= 0.7
    dim = gen_.num_ws * gen_.w_dim
    basis, _ = torch.linalg.qr(torch.randn(dim, 6, generator=torch.Generator().manual_seed(5)))
    rs = ed.edit(w0, target("age"), subspace=basis)
    delta = rs.w_plus - w0
    assert torch.allclose(project(delta, basis), delta, atol=1e-4)


def test_instant_preset_refuses_without_critic_and_with_jecc(gen_, dirs, trained, w0):
    with pytest.raises(BadInput, match="latent critic"):
        Editor(gen_, ToyFaceGuidance(), config=edit_config("instant"), directions=dirs).edit(w0, target("age"))
    codec = torch.nn.Identity()
    ed = Editor(gen_, ToyFaceGuidance(), config=edit_config("instant"), directions=dirs, critic=trained[0])
    with pytest.raises(BadInput, match="face nets in the loop"):
        ed.edit(w0, target("age"), through_channel=(codec, codec, 6.0))
    with pytest.raises(BadInput, match="critic is for W\\+"):
        Editor(gen_, ToyFaceGuidance(), critic=LatentCritic(4, 8, 16, 1, TOY_ATTRIBUTES))


def test_critic_save_load_roundtrip_and_corrupt_file(trained, tmp_path):
    critic = trained[0]
    p = tmp_path / "c.safetensors"
    save_state_dict({k: v.contiguous() for k, v in critic.state_dict().items()}, p,
                    metadata=save_metadata(critic, "tiny", {}, {}))  # fmt: skip
    c2 = load_critic(p)
    w = torch.randn(5, 3, 8)
    assert torch.allclose(c2(w)[0], critic(w)[0]) and c2.attributes == TOY_ATTRIBUTES
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        load_critic(tmp_path / "bad.safetensors")
    save_state_dict({"x": torch.zeros(2)}, tmp_path / "other.safetensors", metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a latent-critic"):
        load_critic(tmp_path / "other.safetensors")


def test_bench_judges_met_on_the_images_not_the_claim(gen_, dirs, trained, w0):
    """``run_instruction`` measures the output; an editor claiming the opposite is caught."""
    ed = Editor(gen_, ToyFaceGuidance(), config=edit_config("instant", critic_id_weight=TOY_ID), directions=dirs,
                critic=trained[0])

    class Liar:
        generator, guidance, support = ed.generator, ed.guidance, None

        def edit(self, w, targets, strength=1.0):
            r = ed.edit(w, targets, strength=strength)
            r.met = ~r.met
            return r

    honest = run_instruction(ed, w0, [target("age")], None)
    lying = run_instruction(Liar(), w0, [target("age")], None)
    assert lying["met"] == honest["met"] >= 0.9
    assert lying["claimed_met_agrees"] == pytest.approx(1.0 - honest["claimed_met_agrees"])


def test_three_preset_comparison_reports_speedups_and_the_check_floor(gen_, dirs, trained, w0):
    from editable_deepsc.eval.edit_bench import BenchInstruction, check_cost, compare_presets, presets_markdown

    g = ToyFaceGuidance()
    editors = {
        "paper": Editor(gen_, g, config=edit_config("paper", steps=40, lambda_keep=0.0)),
        "fast": Editor(gen_, g, config=edit_config("fast"), directions=dirs),
        "instant": Editor(gen_, g, config=edit_config("instant", critic_id_weight=TOY_ID), directions=dirs,
                          critic=trained[0]),
    }
    rows = compare_presets(editors, w0[:8], [BenchInstruction("older", (target("age"),))], None, progress=False)
    assert set(rows[0]) >= {"paper", "fast", "instant", "check_seconds"} and rows[0]["check_seconds"] > 0
    md = presets_markdown(rows, ("paper", "fast", "instant"))
    header = md.splitlines()[0]
    assert "fast speed-up" in header and "instant speed-up" in header and "paper speed-up" not in header
    assert md.splitlines()[1].count("---") == header.count("|") - 1  # one separator per column
    ratio = rows[0]["paper"]["seconds_per_edit"] / rows[0]["instant"]["seconds_per_edit"]
    assert f"{ratio:.1f}x" in md and "at most" in md
    assert check_cost(editors["fast"], w0[:4], (target("age"),), batch_size=2) > 0


def test_system_judges_an_unverified_edit_by_the_measured_scores():
    from types import SimpleNamespace

    from editable_deepsc.records import EditOutcome
    from editable_deepsc.text.targets import ParsedInstruction

    def outcome(verified: bool, claimed: bool, age_tx: float) -> EditOutcome:
        edit = SimpleNamespace(met=torch.tensor([claimed]), verified=verified, strength=1.0)
        return EditOutcome(parsed=ParsedInstruction(text="older", targets=(target("age"),)), source=None,
                           tx_image=None, rx_image=None, w0=None, w_edit=None, w_rx=None, edit=edit, link=None,
                           channel=None, timings={}, scores_before={"age": 30.0}, scores_tx={"age": age_tx})

    assert outcome(True, True, 31.0).target_met_tx  # a checked edit speaks for itself
    assert not outcome(False, True, 31.0).target_met_tx  # predicted met, measured +1 year: not met
    assert outcome(False, False, 39.0).target_met_tx  # predicted miss, measured +9 years: met


def test_shipped_critic_makes_teacher_faces_smile_without_face_nets():
    """The registered edsc-faces64-critic drives the instant preset on held-out faces (judged by the face nets)."""
    from editable_deepsc.editing.builtin import build_editor
    from editable_deepsc.eval.edit_bench import test_latents
    from editable_deepsc.text.targets import EditTarget

    ed = build_editor("instant")
    assert ed.critic is not None and bool((ed.critic.residual_std > 0).all())
    w0 = test_latents(ed.generator, 8, offset=0)
    r = ed.edit(w0, EditTarget("happy", "more"))
    assert not r.verified and r.values_after["happy"].mean() > r.values_before["happy"].mean()
    with torch.no_grad():
        v0 = ed.guidance.measure(ed.generator.synthesis(w0), ("happy",))["happy"]
        v1 = ed.guidance.measure(r.images, ("happy",))["happy"]
        dist = ed.guidance.identity_distance(r.images, ed.generator.synthesis(w0))
    assert (v1 - v0).mean() > 0.2 and (v1 >= 0.5).float().mean() >= 0.5
    assert dist.mean() < 0.45


def test_train_critic_cli_refuses_bad_sizes_before_any_work(tmp_path, capsys):
    from editable_deepsc.cli import main

    work = str(tmp_path / "w")
    cases = [
        (["--n", "20", "--n-val", "20", "--calibration-faces", "0"], "need --n > --n-val"),
        (["--n", "100", "--n-val", "5", "--calibration-faces", "0"], "need --n > --n-val"),
        (["--n", "100", "--n-val", "20", "--variants", "0", "--calibration-faces", "0"], "--variants and --steps"),
        (["--n", "100", "--n-val", "20", "--calibration-faces", "30"], "--calibration-faces must be in"),
    ]
    for args, message in cases:
        assert main(["train", "critic", *args, "--workdir", work]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_train_help_names_the_instant_preset_for_the_critic(capsys):
    from editable_deepsc.cli import main

    assert main(["train", "--help"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("critic"))
    assert "instant editing preset" in line and "fast" not in line
