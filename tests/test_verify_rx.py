"""Receiver-verified edits: side information, the receiver's check, feedback and corrections, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_system import system, face  # noqa: F401 - the tiny system and its face (module fixtures)

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.editing.criteria import goal_value, target_met
from editable_deepsc.errors import BadInput
from editable_deepsc.text.targets import ATTRIBUTES, EditTarget
from editable_deepsc.verify import side_info as si
from editable_deepsc.verify.rounds import Verifier, goals_of

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


# ---------------------------------------------------------------------- side information
def test_bit_layout_follows_the_vocabulary():
    assert si.ATTR_BITS == math.ceil(math.log2(len(ATTRIBUTES))) == 4
    assert si.DIR_BITS == 2 and si.MESSAGE_BITS == si.ATTR_BITS + si.DIR_BITS + si.GOAL_BITS + 1 == 15
    # every attribute and direction survives the bits, the "more follows" bit chains the targets
    goals = [si.quantise(si.Goal(a, d, lo + 0.37 * (hi - lo))) for a, (lo, hi) in si.GOAL_RANGE.items()
             for d in si.DIRECTIONS]
    msgs = si.goals_to_messages(goals)
    assert all(0 <= m < 2**si.MESSAGE_BITS for m in msgs)
    back = [si.message_to_goal(m) for m in msgs]
    assert [g for g, _ in back] == goals
    assert [more for _, more in back] == [True] * (len(goals) - 1) + [False]


def test_goals_are_rounded_so_the_receiver_is_never_more_lenient():
    more = si.quantise(si.Goal("happy", "more", 0.5012))
    less = si.quantise(si.Goal("yaw", "less", -12.34))
    assert 0.5012 <= more.goal < 0.5012 + 1 / 255
    assert -12.34 - 180 / 255 < less.goal <= -12.34
    # the goal is the transmitter's criterion: meeting it is target_met
    t, v0 = EditTarget("age", "more", strength=0.5), torch.tensor([30.0])
    g = goals_of([t], {"age": 30.0})[0]
    exact = float(goal_value(t, v0, 1.0)[0])
    assert exact == 34.0 and exact <= g.goal < exact + 100 / 255
    # a received value the receiver accepts meets the transmitter's criterion too
    for v in (g.goal - 0.05, g.goal, g.goal + 0.05):
        if v >= g.goal:
            assert bool(target_met(t, v0, torch.tensor([v]))[0])


def test_side_info_round_trips_and_its_symbols_are_counted():
    goals = [si.quantise(si.Goal("happy", "more", 0.61)), si.quantise(si.Goal("yaw", "less", -10.0))]
    for snr in (0.0, 6.0, 15.0):
        x = si.encode_goals(goals, snr)
        assert x.dtype == torch.complex64 and x.shape == (1, si.side_info_symbols(2, snr))
        assert float(x.abs().pow(2).mean()) == pytest.approx(1.0, abs=1e-5)
        assert si.decode_goals(x, snr) == goals
    # the length follows the SNR: more symbols at low SNR, and the bound it was sized for holds
    assert si.side_info_symbols(1, 0.0) > si.side_info_symbols(1, 6.0) > si.side_info_symbols(1, 15.0)
    assert si.code_for(6.0).union_bound(6.0) <= si.TARGET_WER


def test_side_info_survives_6db_awgn():
    from editable_deepsc.channel.link import pass_channel

    goals = [si.quantise(si.Goal("surprised", "more", 0.42))]
    x = si.encode_goals(goals, 6.0).repeat(2000, 1)
    y, h, _ = pass_channel(x, ChannelConfig("awgn", 6.0).build(), torch.full((2000,), 6.0), torch.Generator().manual_seed(0))
    errors = sum(si.decode_goals(y[i:i + 1], 6.0, h[i:i + 1]) != goals for i in range(2000))
    assert errors <= 2  # union bound 2.5e-5 per word; uncoded 15 bits at 6 dB would lose ~30%


def test_feedback_bit_is_sized_for_the_snr_and_decodes():
    assert si.feedback_symbols(6.0) == 2 and si.feedback_symbols(0.0) > si.feedback_symbols(12.0) == 1
    for nack in (True, False):
        assert si.decode_feedback(si.encode_feedback(nack, 6.0)) is nack


# ---------------------------------------------------------------------- rounds on the tiny system
def test_fusion_of_two_estimates():
    mu = torch.zeros(1, 2, 2)
    w1, w2 = torch.ones(1, 2, 2), 3 * torch.ones(1, 2, 2)
    fused = Verifier.fuse([w1, w2], [0.5, 0.5], mu)
    assert torch.allclose(fused, torch.full((1, 2, 2), 2 * (1 + 3) / 3))  # n = 1/(2+2-1), (w1+w2)/0.5 * n


def test_high_snr_needs_no_correction(system, face):  # noqa: F811
    ch = ChannelConfig("awgn", 40.0)
    out = system.edit(face, "make her smile", ch, seed=1, verify_rx=True)
    rec = out.to_json()
    side = si.side_info_symbols(1, 40.0)
    assert rec["verify"]["side_info_ok"] and rec["verify"]["rounds"][0]["side_symbols"] == side
    # the editor stops as soon as the goal is met, so the toy edit lands on it: a channel this clean
    # changes the received value by far less than the margin of an edit that clearly meets its goal
    strong = out.w0 + 2.0 * (out.w_edit - out.w0)
    goals = goals_of(out.parsed.targets, out.scores_before)
    v = system.verifier.send(out.w0, strong, goals, ch, seed=1)
    assert v.corrections == 0 and v.rounds[0].met_rx is True and not v.rounds[0].nack
    assert v.symbols == 12 + side and v.feedback_symbols == si.feedback_symbols(40.0)  # the ACK
    assert rec["cbr_total"] == pytest.approx(rec["symbols"] / (3 * 16 * 16))
    plain = system.edit(face, "make her smile", ch, seed=1)
    rp = plain.to_json()
    assert rp["rounds"] == 0 and rp["symbols"] == rp["k"] and rp["verify"] is None
    # round 0 is the unverified transmission exactly
    assert torch.equal(out.link.sent.symbols, plain.link.sent.symbols) and torch.equal(out.verify.w_rx[0], plain.w_rx)


@pytest.mark.parametrize("correction", ["delta", "resend"])
def test_forced_failure_triggers_corrections_and_symbols_add_up(system, face, monkeypatch, correction):  # noqa: F811
    checks = iter([False, True])
    monkeypatch.setattr(system.verifier, "met_at_receiver", lambda w, goals: next(checks))
    out = system.edit(face, "make her smile", ChannelConfig("awgn", 20.0), seed=1, verify_rx=True,
                      correction=correction, resend_k=12 if correction == "resend" else None)
    v = out.verify
    assert [r.kind for r in v.rounds] == ["full", correction]
    assert [r.nack for r in v.rounds] == [True, False]
    extra = system.tx.delta.k if correction == "delta" else 12
    side, fb = si.side_info_symbols(1, 20.0), si.feedback_symbols(20.0)
    assert v.symbols == 12 + side + extra and out.symbols == v.symbols
    assert v.feedback_symbols == 2 * fb  # NACK, then ACK
    assert not torch.equal(v.w_rx[1], v.w_rx[0]) and torch.equal(out.w_rx, v.w_rx[1])
    if correction == "delta":  # the receiver added a push along the edit: closer to w0 + 1.5 (w_edit - w0)
        target = out.w0 + 1.5 * (out.w_edit - out.w0)
        assert (v.w_rx[1] - target).norm() < (v.w_rx[0] - target).norm()
    rec = out.to_json()
    assert rec["rounds"] == 1 and [r["kind"] for r in rec["verify"]["rounds"]] == ["full", correction]


def test_rounds_stop_at_max_rounds_without_a_last_feedback(system, face, monkeypatch):  # noqa: F811
    monkeypatch.setattr(system.verifier, "met_at_receiver", lambda w, goals: False)
    v = system.edit(face, "make her smile", ChannelConfig("awgn", 20.0), seed=1, verify_rx=True, max_rounds=2).verify
    assert v.corrections == 2 and v.rounds[-1].met_rx is False and v.rounds[-1].feedback_symbols == 0
    assert v.symbols == 12 + si.side_info_symbols(1, 20.0) + 2 * system.tx.delta.k
    v0 = system.edit(face, "make her smile", ChannelConfig("awgn", 20.0), seed=1, verify_rx=True, max_rounds=0).verify
    assert v0.corrections == 0 and v0.feedback_symbols == 0


def test_a_set_without_delta_codec_refuses_delta_corrections_clearly(system, face, monkeypatch):  # noqa: F811
    monkeypatch.setattr(system.tx, "delta", None)
    with pytest.raises(BadInput, match="no delta codec.*'resend'"):
        system.edit(face, "smile", ChannelConfig("awgn", 6.0), verify_rx=True, correction="delta")
    with pytest.raises(BadInput, match="max_rounds"):
        system.edit(face, "smile", ChannelConfig("awgn", 6.0), verify_rx=True, correction="resend", max_rounds=3)
    with pytest.raises(BadInput, match="no codec with k=77"):
        system.edit(face, "smile", ChannelConfig("awgn", 6.0), verify_rx=True, correction="resend", resend_k=77)
    out = system.edit(face, "smile", ChannelConfig("awgn", 6.0), verify_rx=True, correction="resend", resend_k=12)
    assert out.verify.correction == "resend"


# ---------------------------------------------------------------------- CLI (faces64)
@pytest.fixture(scope="module")
def face64(tmp_path_factory):
    from editable_deepsc.demo import sample_face
    from editable_deepsc.imaging.io import save_image

    p = tmp_path_factory.mktemp("verify") / "face.png"
    save_image(sample_face(64), p)
    return p


def test_cli_edit_verify_rx_json_has_rounds_and_symbols(face64, capsys):
    from editable_deepsc.cli import main

    rc = main(["edit", str(face64), "-i", "make him smile", "--snr", "40", "--verify-rx", "--json"])
    rec = json.loads(capsys.readouterr().out)
    assert rc in (0, None)
    assert rec["rounds"] == 0 and rec["verify"]["correction"] == "delta"
    assert rec["symbols"] == 128 + si.side_info_symbols(1, 40.0) == rec["verify"]["symbols"]
    assert rec["verify"]["rounds"][0]["side_symbols"] == si.side_info_symbols(1, 40.0)
    assert rec["feedback_symbols"] == 1


@pytest.mark.parametrize("argv, match", [
    (["--max-rounds", "3"], "--max-rounds"),
    (["--max-rounds", "-1"], "--max-rounds"),
    (["--correction", "retry"], "--correction"),
    (["--resend-k", "0"], "--resend-k"),
])
def test_cli_edit_bad_verify_options_exit_2(argv, match, face64, capsys):
    from editable_deepsc.cli import main

    rc = main(["edit", str(face64), "-i", "make him smile", "--verify-rx", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and match in err[0]


@pytest.mark.parametrize("argv, match", [
    (["--snr", "6,99"], "SNR"),
    (["--corrections", "delta,retry"], "--corrections"),
    (["--resend-ks", "x"], "--resend-ks"),
    (["--delta-steps", "0"], "--delta-steps"),
    (["--n", "0"], "--n"),
])
def test_cli_bench_verify_bad_options_exit_2(argv, match, tmp_path, capsys):
    from editable_deepsc.cli import main

    out = tmp_path / "v.md"
    rc = main(["bench", "verify", "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and match in err[0]
    assert not out.exists()


def test_cli_bench_verify_writes_page_and_json(tmp_path, capsys):
    from editable_deepsc.cli import main
    from editable_deepsc.eval.verify_bench import TABLE_BEGIN, TABLE_END

    out = tmp_path / "v.md"
    out.write_text(f"# page\n\nkept text\n\n{TABLE_BEGIN}\nold\n{TABLE_END}\n\nafter\n")
    rc = main(["bench", "verify", "--n", "2", "--snr", "6", "--resend-ks", "128", "--out", str(out), "--quiet"])
    assert rc in (0, None)
    page = out.read_text()
    assert "kept text" in page and "after" in page and "old" not in page
    assert f"edsc bench verify --models faces64 --snr 6 --channel awgn --n 2 --corrections delta,resend " \
           f"--resend-ks 128 --out {out}" in page
    res = json.loads(out.with_suffix(".json").read_text())
    rows = {r["variant"]: r for r in res["rows"]}
    assert set(rows) == {"delta", "resend k=128"}
    side = si.side_info_symbols(1, 6.0)
    for r in rows.values():
        assert r["n"] == 2 and len(r["success"]) == 3 and r["symbols"][0] == 128 + side
        assert r["symbols"][0] <= r["symbols"][1] <= r["symbols"][2]
    for rec in res["records"]:  # a round's symbols are the sum of what was sent by then
        assert rec["symbols"][-1] == sum(x[1] + x[2] for x in rec["rounds"])  # k + side symbols per round


# ---------------------------------------------------------------------- sessions
def test_verified_session_counts_corrections_per_turn(system, face, monkeypatch):  # noqa: F811
    s = system.session(face, ChannelConfig("awgn", 20.0), seed=0, verify_rx=True, correction="delta")
    checks = iter([True, False, True])  # turn 0 accepted; turn 1 (a delta) corrected once
    monkeypatch.setattr(system.verifier, "met_at_receiver", lambda w, goals: next(checks))
    t0, t1 = s.send("smile"), s.send("a bit more")
    side, fb, dk = si.side_info_symbols(1, 20.0), si.feedback_symbols(20.0), system.tx.delta.k
    assert (t0.kind, t0.rounds, t0.symbols, t0.feedback_symbols) == ("full", 0, 12 + side, fb)
    assert (t1.kind, t1.rounds, t1.symbols, t1.feedback_symbols) == ("delta", 1, dk + side + dk, 2 * fb)
    log = s.log()
    assert log["verify_rx"]["correction"] == "delta" and log["turns"][1]["rounds"] == 1
    assert log["symbols_total"] == t0.symbols + t1.symbols
    assert [r["kind"] for r in log["turns"][1]["verify"]["rounds"]] == ["delta", "delta"]
    with pytest.raises(BadInput, match="max_rounds"):
        system.session(face, ChannelConfig("awgn", 20.0), verify_rx=True, max_rounds=5)


# ---------------------------------------------------------------------- web
def test_web_session_with_verify_rx_reports_rounds_per_turn(tmp_path):
    from starlette.testclient import TestClient
    from web_toys import toy_samples, toy_system

    from editable_deepsc.web.app import STATIC_DIR, create_app

    sysm = toy_system()
    app = create_app(sysm, toy_samples(sysm), tmp_dir=tmp_path / "app")
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:
        r = c.post("/api/sessions", params={"sample": "toy-11", "verify_rx": "2"})
        assert r.status_code == 400 and "verify_rx" in r.json()["error"]["message"]
        r = c.post("/api/sessions", params={"sample": "toy-11", "verify_rx": "1", "correction": "retry"})
        assert r.status_code == 400 and "correction" in r.json()["error"]["message"]
        s = c.post("/api/sessions", params={"sample": "toy-11", "verify_rx": "1", "snr_db": "20"}).json()
        assert s["verify_rx"]["correction"] == "delta"
        t = c.post(f"/api/sessions/{s['id']}/send", json={"instruction": "smile"}).json()["turn"]
        assert t["verify"]["rounds"][0]["side_symbols"] == si.side_info_symbols(1, 20.0)
        assert t["symbols"] == 12 + si.side_info_symbols(1, 20.0) + t["rounds"] * sysm.tx.delta.k
        assert t["feedback_symbols"] >= si.feedback_symbols(20.0)
        r = c.post(f"/api/sessions/{s['id']}/reset").json()["session"]
        assert r["verify_rx"]["correction"] == "delta"  # a reset keeps the session's verification
        plain = c.post("/api/sessions", params={"sample": "toy-11"}).json()
        assert plain["verify_rx"] is None
    js = (STATIC_DIR / "app.js").read_text()
    assert "verify_rx" in js and "t.rounds" in js and 'id="verify-rx"' in (STATIC_DIR / "index.html").read_text()
