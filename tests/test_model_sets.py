"""Model sets (zoo/sets), the one zoo loader (zoo.load), cache cards and the --models option."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from editable_deepsc import vocab
from editable_deepsc.cli import main
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.paths import cache_dir
from editable_deepsc.zoo import loader, registry
from editable_deepsc.zoo.sets import ModelSet, list_sets, load_set

REPO_CARDS, REPO_WEIGHTS = registry.CARDS_DIR, registry.WEIGHTS_DIR


# ---------------------------------------------------------------------- the set card
def test_faces64_set_card_names_every_member():
    s = load_set("faces64")
    assert (s.name, s.image_size) == ("faces64", 64)
    assert s.member("generator") == "edsc-faces64" and s.member("teacher") == "teacher-dcgan64"
    assert s.member("encoder") == "edsc-e4e-faces64" and s.member("delta") == "edsc-delta-faces64"
    assert s.member("directions") == "edsc-faces64-directions" and s.member("critic") == "edsc-faces64-critic"
    assert s.codecs() == {k: f"edsc-codec-faces64-k{k}" for k in (32, 64, 128, 250)}
    assert s.codec() == "edsc-codec-faces64-k128" and s.codec(32) == "edsc-codec-faces64-k32"
    assert s.deepjscc() == {Fraction(c, 96): f"edsc-deepjscc-faces64-c{c}" for c in (16, 8, 4, 2)}
    from editable_deepsc.guidance.faces.align import FRAMINGS

    assert FRAMINGS[s.face_crop["framing"]] == (s.face_crop["side_scale"], s.face_crop["centre_shift"])
    assert load_set() == s and load_set(s) is s  # default set, and a set passes through
    assert len(s.names()) == 14 and all(registry.find_card(n) is not None for _, n in s.names())


def test_set_names_match_the_vocabulary_and_the_package_defaults():
    from editable_deepsc.baselines.deepjscc import model_name
    from editable_deepsc.channel.codec_zoo import DEFAULT_CODEC
    from editable_deepsc.inversion.encoder import ENCODER_NAME
    from editable_deepsc.system import SystemConfig

    assert vocab.MODEL_SETS == tuple(list_sets()) and vocab.DEFAULT_MODEL_SET in vocab.MODEL_SETS
    s = load_set()
    assert DEFAULT_CODEC == s.codec() and ENCODER_NAME == s.member("encoder")
    assert model_name(8) == "edsc-deepjscc-faces64-c8" and model_name(3) == "edsc-deepjscc-faces64-c3"
    cfg = SystemConfig()
    assert (cfg.models, cfg.generator, cfg.encoder, cfg.codec) == ("faces64", "edsc-faces64", "edsc-e4e-faces64", None)


def test_absent_member_and_unknown_set_are_refused_by_name():
    s = ModelSet("toyset", "", 64, members={"generator": "g", "exits": None, "codecs": {"8": "c8"}})
    with pytest.raises(CheckpointError, match=r"model set 'toyset' has no exits"):
        s.member("exits")
    with pytest.raises(CheckpointError, match=r"model set 'toyset' has no critic"):
        s.member("critic")
    with pytest.raises(CheckpointError, match=r"no codec with k=16 .*k = 8"):
        s.codec(16)
    assert s.codec() == "c8" and not s.has("exits") and s.has("generator")
    with pytest.raises(BadInput, match=r"unknown model set 'ffhq9' \(choose from: faces64"):
        load_set("ffhq9")
    with pytest.raises(BadInput, match="unknown model set"):
        from editable_deepsc.system import SystemConfig

        SystemConfig(models="ffhq9")


# ---------------------------------------------------------------------- zoo.load
@pytest.mark.parametrize(
    ("name", "kind", "cls"),
    [
        ("edsc-faces64", "generator", "editable_deepsc.generator.faces64:Faces64Generator"),
        ("teacher-dcgan64", "generator", "editable_deepsc.generator.teacher:TeacherDCGAN"),
        ("edsc-e4e-faces64", "encoder", "editable_deepsc.inversion.encoder:E4EEncoder"),
        ("edsc-codec-faces64-k32", "codec", "editable_deepsc.channel.codec:SemanticCodec"),
        ("edsc-delta-faces64", "delta-statistics", "editable_deepsc.channel.latent_pca:LatentPCA"),
        ("edsc-faces64-directions", "directions", "editable_deepsc.editing.directions:AttributeDirections"),
        ("edsc-faces64-critic", "latent-critic", "editable_deepsc.editing.critic:LatentCritic"),
        ("edsc-deepjscc-faces64-c8", "deepjscc", "editable_deepsc.baselines.deepjscc:DeepJSCC"),
    ],
)
def test_zoo_load_dispatches_on_the_card_kind(name, kind, cls):
    import importlib

    module, attr = cls.split(":")
    model = loader.load(name)
    assert isinstance(model, getattr(importlib.import_module(module), attr))
    assert registry.card(name).kind == kind
    if isinstance(model, torch.nn.Module):
        assert not model.training


def test_zoo_load_face_net_kind_wrong_kind_and_path(tmp_path):
    state = loader.load("faceapi-landmark68")
    assert isinstance(state, dict) and all(v.dtype == torch.float32 for v in state.values())
    with pytest.raises(CheckpointError, match="'edsc-faces64-critic' is a latent-critic, not a codec"):
        loader.load("edsc-faces64-critic", kind="codec")
    # a bare file of this package loads by path: its format tag gives the kind
    d = loader.load("edsc-faces64-directions")
    p = tmp_path / "dirs.safetensors"
    d.save(p)
    back = loader.load(p)
    assert back.attributes == d.attributes and torch.equal(back.vector(d.attributes[0]), d.vector(d.attributes[0]))
    with pytest.raises(CheckpointError, match="is not a latent-critic file"):
        loader.load(p, kind="latent-critic")


def test_a_new_kind_registers_one_builder(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "CARDS_DIR", tmp_path / "cards")
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setitem(loader._BUILDERS, "toy-kind", None)
    loader.register_builder("toy-kind", lambda card, state: ("built", card.config["n"], state["w"].sum().item()))
    registry.publish("toy", {"w": torch.ones(3)}, kind="toy-kind", licence="MIT", source="test", config={"n": 7})
    assert loader.load("toy") == ("built", 7, 3.0)
    with pytest.raises(CheckpointError, match="no builder for model kind 'nothing'"):
        loader.builder_for("nothing")


# ---------------------------------------------------------------------- cache cards
def _cache_card(fix: str | None = None) -> Path:
    root = cache_dir() / "zoo"
    dst = registry.publish("tiny-cached", {"w": torch.arange(4.0)}, weights_dir=root / "weights",
                           cards_dir=root / "cards", kind="toy-cached", licence="MIT", source="a test",
                           config={"n": 4})  # fmt: skip
    if fix:
        card = root / "cards" / "tiny-cached.json"
        card.write_text(json.dumps({**json.loads(card.read_text()), "fix": fix}))
    return dst


def test_cache_cards_are_found_after_the_repository_cards(tmp_path, monkeypatch):
    monkeypatch.delenv("EDSC_USER_ZOO", raising=False)
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    dst = _cache_card()
    c = registry.card("tiny-cached")
    assert c.path == dst and c.file == "tiny-cached.safetensors"  # relative to cache_dir()/zoo/weights
    assert torch.equal(registry.load_state_dict("tiny-cached")["w"], torch.arange(4.0))
    assert "tiny-cached" in {c.name for c in registry.list_cache_cards()}
    # the repository's card wins over a cache card of the same name
    (tmp_path / "cache" / "zoo" / "cards" / "edsc-faces64.json").write_text(
        (tmp_path / "cache" / "zoo" / "cards" / "tiny-cached.json").read_text())
    assert registry.card("edsc-faces64").path == REPO_WEIGHTS / "edsc-faces64.safetensors"
    assert main(["zoo", "list", "--json"]) == 0


def test_cache_card_fix_is_quoted_when_its_weights_are_missing_or_corrupt(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EDSC_USER_ZOO", raising=False)
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "cache"))
    dst = _cache_card(fix="edsc convert tiny")
    assert registry.card("tiny-cached").fix == "edsc convert tiny"
    assert "fix" not in registry.card("edsc-faces64").to_json()
    dst.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"sha256 mismatch for tiny-cached\.safetensors.*; fix: edsc convert tiny"):
        registry.load_state_dict("tiny-cached")
    dst.unlink()
    with pytest.raises(CheckpointError, match=r"tiny-cached weights missing .*; fix: edsc convert tiny"):
        registry.load_state_dict("tiny-cached")
    assert main(["zoo", "verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tiny-cached  file missing; fix: edsc convert tiny" in out


# ---------------------------------------------------------------------- a broken set, --models
@pytest.fixture
def zoo_copy(tmp_path, monkeypatch):
    """The repository zoo as links under tmp_path (cards copied), so that one member can be broken."""
    cards, weights = tmp_path / "cards", tmp_path / "weights"
    cards.mkdir()
    weights.mkdir()
    for p in REPO_CARDS.glob("*.json"):
        (cards / p.name).write_text(p.read_text())
    for p in REPO_WEIGHTS.iterdir():
        (weights / p.name).symlink_to(p)
    monkeypatch.setattr(registry, "CARDS_DIR", cards)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    monkeypatch.setenv("EDSC_USER_ZOO", str(tmp_path / "user"))
    return weights


def test_a_set_with_a_corrupt_member_is_refused_naming_it(zoo_copy, tmp_path, capsys):
    (zoo_copy / "edsc-faces64-critic.safetensors").unlink()
    (zoo_copy / "edsc-faces64-critic.safetensors").write_bytes(b"garbage")
    out = tmp_path / "recon.png"
    assert main(["invert", str(tmp_path / "face.png"), "--models", "faces64", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model set 'faces64': member critic (edsc-faces64-critic) is unusable: sha256")
    assert len(err.splitlines()) == 1 and not out.exists()
    assert main(["zoo", "verify", "--models", "faces64"]) == 1
    rows = capsys.readouterr().out
    assert "FAIL  critic  edsc-faces64-critic  sha256" in rows and "13/14 members of faces64 verified" in rows


def test_a_set_with_a_missing_member_is_refused_naming_it(zoo_copy, tmp_path, capsys):
    (zoo_copy / "edsc-codec-faces64-k64.safetensors").unlink()
    rc = main(["transmit", str(tmp_path / "face.png"), "--method", "deepjscc", "--models", "faces64"])
    assert rc == 2
    assert "member codecs[64] (edsc-codec-faces64-k64) is unusable: file missing" in capsys.readouterr().err
    (zoo_copy.parent / "cards" / "edsc-e4e-faces64.json").unlink()
    with pytest.raises(CheckpointError, match=r"member encoder \(edsc-e4e-faces64\) is unusable: not registered"):
        load_set("faces64").check()


@pytest.mark.parametrize(
    "argv",
    [
        ["edit", "face.png", "-i", "make her smile"],
        ["invert", "face.png"],
        ["transmit", "face.png"],
        ["eval", "--n", "1"],
        ["bench", "codec", "--n", "1"],
        ["train", "codec", "--steps", "1"],
        ["train", "critic", "--n", "20"],
        ["zoo", "card"],
    ],
)
def test_unknown_model_set_exits_2(argv, capsys, tmp_path):
    assert main([*argv, "--models", "ffhq9"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: unknown model set 'ffhq9' (choose from: faces64, ffhq)"


def test_system_load_takes_a_set_name():
    from editable_deepsc.system import EditableDeepSC, SystemConfig

    with pytest.raises(BadInput, match="unknown model set 'ffhq9'"):
        EditableDeepSC.load(models="ffhq9")
    with pytest.raises(BadInput, match="contradicts"):
        EditableDeepSC.load(SystemConfig(), models="other")
