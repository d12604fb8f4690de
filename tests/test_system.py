"""The composed system and multi-turn sessions on tiny models (no weights needed)."""

from __future__ import annotations

import pytest
import torch
from edit_toys import TinyGenerator, ToyGuidance
from torch import nn

from editable_deepsc.channel.codec import PCAUncodedCodec
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.delta import DeltaCodec, fit_delta_statistics
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.editor import Editor
from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.receiver import Receiver
from editable_deepsc.records import STAGES
from editable_deepsc.session import continue_targets
from editable_deepsc.system import EditableDeepSC, SystemConfig
from editable_deepsc.text.targets import EditTarget, FollowUp, ParsedInstruction
from editable_deepsc.transmitter import Transmitter


class Tiny16(TinyGenerator):
    """The tiny generator upsampled to 16x16 (SSIM needs at least 11x11 px)."""

    def __init__(self):
        super().__init__()
        self.resolution = 16

    def synthesis(self, w_plus):
        return nn.functional.interpolate(super().synthesis(w_plus), scale_factor=2, mode="nearest")


class ToyEncoder(nn.Module):
    """Least-squares inverse of the tiny generator's pre-tanh linear map (exact for its own images)."""

    def __init__(self, gen: Tiny16):
        super().__init__()
        self.num_ws, self.w_dim, self.resolution = gen.num_ws, gen.w_dim, gen.resolution
        a = gen.basis.reshape(-1, gen.basis.shape[-1])  # (L*W, P)
        self.pinv = nn.Parameter(torch.linalg.pinv(a), requires_grad=False)

    def forward(self, images):
        x = torch.atanh(nn.functional.avg_pool2d(images, 2).clamp(-0.999, 0.999)).flatten(1)
        return (x @ self.pinv).view(-1, self.num_ws, self.w_dim)


class ToyParser:
    """Maps a few phrases to targets; anything else is refused."""

    TABLE = {"smile": (EditTarget("happy", "more"),), "older": (EditTarget("age", "more"),),
             "turn": (EditTarget("yaw", "more"),)}

    FOLLOW_UPS = {"undo that": ("undo", 1.0), "start over": ("reset", 1.0), "a lot more": ("repeat", 1.5),
                  "more": ("repeat", 1.0), "a bit more": ("repeat", 0.5), "go back a bit": ("reverse", 0.5)}

    def parse(self, text):
        if text in self.FOLLOW_UPS:
            kind, strength = self.FOLLOW_UPS[text]
            return ParsedInstruction(text=text, targets=(), followup=FollowUp(kind, strength))
        for key, targets in self.TABLE.items():
            if key in text:
                return ParsedInstruction(text=text, targets=targets)
        raise UnsupportedInstruction(f"cannot do {text!r}", supported=list(self.TABLE), nearest="smile")


@pytest.fixture(scope="module")
def system():
    torch.manual_seed(0)
    gen = Tiny16()
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(400, 3, 8, generator=g)
    codec = PCAUncodedCodec(LatentPCA(3, 8).fit(latents), k=12)  # all 24 real coordinates, uncoded
    editor = Editor(gen, ToyGuidance(), config=EditConfig(steps=40, lr=0.1, schedule="constant",
                                                          lambda_l2=0.01, lambda_keep=0.0))
    deltas = torch.stack([editor.edit(latents[i:i + 8], (t,), rng=g).w_plus - latents[i:i + 8]
                          for i, t in zip(range(0, 48, 8), [EditTarget("happy", "more"), EditTarget("age", "more"),
                                                            EditTarget("yaw", "more")] * 2)]).flatten(0, 1)
    delta = DeltaCodec(fit_delta_statistics(deltas), k=8)
    cfg = SystemConfig(generator="tiny", refresh_every=3, align=False)
    tx = Transmitter(gen, ToyEncoder(gen), ToyParser(), editor, codec, delta, cfg)
    return EditableDeepSC(tx, Receiver(gen, codec, delta), cfg, guidance=ToyGuidance())


@pytest.fixture(scope="module")
def face(system):
    w = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(11)) * 0.8
    return system.rx.synthesise(w)


def test_edit_end_to_end_reports_every_stage_and_meets_target(system, face):
    out = system.edit(face, "make her smile", ChannelConfig("awgn", 20.0), seed=1)
    rec = out.to_json()
    assert set(rec["timings"]) == set(STAGES)
    assert rec["k"] == 12 and rec["cbr"] == pytest.approx(12 / (3 * 16 * 16))
    assert rec["targets"][0]["attribute"] == "happy"
    assert rec["target_met_tx"]
    assert rec["scores_tx"]["happy"] > rec["scores_before"]["happy"]
    # inversion of a generator image by the exact toy encoder is (almost) lossless
    assert torch.allclose(system.rx.synthesise(out.w0), face, atol=1e-3)


def test_received_quality_rises_with_snr(system, face):
    psnr = [system.edit(face, "smile", ChannelConfig("awgn", s), seed=2).to_json()["rx_vs_tx"]["psnr"]
            for s in (0.0, 10.0, 30.0)]
    assert psnr[0] < psnr[1] < psnr[2]


def test_same_seed_same_result(system, face):
    a = system.edit(face, "smile", ChannelConfig("rayleigh", 6.0), seed=5)
    b = system.edit(face, "smile", ChannelConfig("rayleigh", 6.0), seed=5)
    assert torch.equal(a.rx_image, b.rx_image)


def test_refused_instruction_raises_before_anything_is_sent(system, face):
    with pytest.raises(UnsupportedInstruction):
        system.edit(face, "add a hat", ChannelConfig("awgn", 6.0))


def test_non_finite_latent_is_refused(system, face):
    w = torch.full((1, 3, 8), float("nan"))
    with pytest.raises(BadInput):
        system.edit(face, "smile", ChannelConfig("awgn", 6.0), w0=w)


def test_continue_targets_repeats_or_reverses_at_scaled_strength():
    last = (EditTarget("happy", "more", strength=0.5), EditTarget("age", "set", amount=40.0))
    assert continue_targets(last, 0.5, reverse=False) == (EditTarget("happy", "more", strength=0.25),)
    assert continue_targets(last, 2.0, reverse=True) == (EditTarget("happy", "less", strength=1.0),)
    assert continue_targets((EditTarget("age", "set", amount=40.0),), 1.0, reverse=False) == ()


def test_session_sends_deltas_refreshes_and_undoes(system, face):
    s = system.session(face, ChannelConfig("awgn", 20.0), seed=0)
    t0 = s.send("smile")
    t1 = s.send("a bit more")
    t2 = s.send("now older")
    t3 = s.send("turn")  # third edit since the last full one -> refresh
    assert [t.kind for t in (t0, t1, t2, t3)] == ["full", "delta", "delta", "full"]
    assert t0.symbols == 12 and t1.symbols == 8  # 5 scale symbols + 3 payload (the toy latent is tiny)
    assert t1.targets == ["happy: more (x0.5)"]
    # the follow-up keeps the received image close to what the transmitter meant
    assert t1.psnr > 25.0 and t2.psnr > 20.0
    rx_before_t3 = s.w_rx[-2].clone()
    u = s.undo()
    assert u.symbols == 0 and u.kind == "none"
    assert torch.equal(s.w_rx[-1], rx_before_t3)
    log = s.log()
    assert [t["action"] for t in log["turns"]] == ["edit"] * 4 + ["undo"]
    assert log["symbols_total"] == 12 + 8 + 8 + 12


def test_session_errors_leave_state_unchanged(system, face):
    s = system.session(face, ChannelConfig("awgn", 6.0), seed=0)
    with pytest.raises(BadInput, match="nothing to undo"):
        s.undo()
    with pytest.raises(UnsupportedInstruction):
        s.send("a bit more")  # no previous edit to continue
    s.send("smile")
    with pytest.raises(UnsupportedInstruction):
        s.send("make it a cat")
    assert len(s.w_rx) == 1 and len(s.turns) == 1
    s.set_channel(ChannelConfig("rayleigh", 0.0))
    t = s.send("more")
    assert (t.channel, t.snr_db) == ("rayleigh", 0.0)
    with pytest.raises(BadInput):
        ChannelConfig("awgn", 99.0)


def test_delta_codec_error_shrinks_with_snr_and_captures_edit_energy(system):
    from editable_deepsc.channel import AWGN

    delta = system.tx.delta
    g = torch.Generator().manual_seed(4)
    w = torch.randn(16, 3, 8, generator=g)
    d = system.tx.editor.edit(w, (EditTarget("happy", "more"),), rng=g).w_plus - w
    # 6 of 24 axes: the fitted basis captures far more of an edit's energy than a random one
    q, _ = torch.linalg.qr(torch.randn(24, 24, generator=g))
    random_share = float(((d.reshape(16, -1) @ q[:, :6]).pow(2).sum(1) / d.reshape(16, -1).pow(2).sum(1)).mean())
    assert float(delta.captured_energy(d).mean()) > 1.5 * random_share
    # a small and a large delta are sent at about unit power (the scale travels digitally)
    for s in (0.1, 1.0, 3.0):
        p = delta.encode(d * s).abs().pow(2).mean()
        assert 0.7 < float(p) < 1.3
    # the estimate scales with the delta (relative error independent of its size)
    rel = []
    for s in (0.1, 1.0):
        d_hat = delta(d * s, AWGN(), 30.0, rng=torch.Generator().manual_seed(0))
        rel.append(float((d_hat - d * s).norm() / (d * s).norm()))
    assert abs(rel[0] - rel[1]) < 0.05
    errs = []
    for snr in (0.0, 10.0, 20.0):
        d_hat = delta(d, AWGN(), snr, rng=torch.Generator().manual_seed(0))
        errs.append(float((d_hat - d).pow(2).mean()))
    assert errs[0] > errs[1] > errs[2]
    with pytest.raises(BadInput):
        DeltaCodec(delta.pca, k=100)


def test_delta_codec_sends_fewer_coordinates_more_often_at_low_snr(system):
    from editable_deepsc.channel import AWGN
    from editable_deepsc.channel.codec import transmit_symbols

    delta = system.tx.delta
    ms = [delta.coords_for(snr) for snr in (-5.0, 0.0, 10.0, 40.0)]
    assert ms == sorted(ms) and ms[-1] == delta.slots and ms[0] < delta.slots
    assert delta.subspace(0.0).shape == (24, delta.coords_for(0.0))
    g = torch.Generator().manual_seed(6)
    w = torch.randn(63, 3, 8, generator=g)
    ts = [EditTarget("happy", "more"), EditTarget("age", "more"), EditTarget("yaw", "more")]  # the fitted mix
    d = torch.cat([system.tx.editor.edit(w[i::3], (t,), rng=g).w_plus - w[i::3] for i, t in enumerate(ts)])
    err = {}
    for name, nominal in (("adaptive", 0.0), ("one per slot", None)):
        x = delta.encode(d, nominal)
        assert x.shape == (63, delta.k) and 0.7 < float(x.abs().pow(2).mean()) < 1.3
        y, snr_rx = transmit_symbols(x, AWGN(), torch.full((63,), 0.0), torch.Generator().manual_seed(1))
        err[name] = float((delta.decode(y, snr_rx, nominal) - d).pow(2).mean())
    assert err["adaptive"] < 0.95 * err["one per slot"]  # repetition beats spreading at 0 dB
    # the nominal SNR is what both ends agree on: decoding with another one garbles the delta
    x = delta.encode(d, -5.0)
    assert not torch.allclose(delta.decode(x, 40.0, -5.0), delta.decode(x, 40.0, 40.0))


def test_parser_follow_up_commands(system, face):
    s = system.session(face, ChannelConfig("awgn", 20.0), seed=0)
    with pytest.raises(UnsupportedInstruction, match="none to continue"):
        s.send("a lot more")
    s.send("smile")
    t = s.send("a lot more")
    assert t.targets == ["happy: more (x1.5)"] and t.kind == "delta"
    t = s.send("go back a bit")
    assert t.targets == ["happy: less (x0.75)"]  # half of the last (x1.5) edit, reversed
    t = s.send("undo that")
    assert t.action == "undo" and t.symbols == 0 and len(s.w_tx) == 2
    t = s.send("start over")
    assert t.action == "reset" and t.kind == "full"
    assert torch.equal(s.w_tx[-1], s.w_source)
    with pytest.raises(UnsupportedInstruction, match="session command"):
        system.edit(face, "undo that", ChannelConfig("awgn", 6.0))


def test_follow_up_edits_in_the_delta_subspace_lose_nothing_to_truncation(system, face):
    import dataclasses

    base = system.config
    psnr, captured = {}, {}
    try:
        for inside in (True, False):
            system.config = dataclasses.replace(base, delta_subspace=inside)
            s = system.session(face, ChannelConfig("awgn", 40.0), seed=0)
            s.send("smile")
            t = s.send("now older")
            assert t.kind == "delta" and t.symbols == 8
            psnr[inside] = t.psnr
            captured[inside] = float(system.tx.delta.captured_energy(s.w_tx[-1] - s.w_tx[-2], 40.0)[0])
    finally:
        system.config = base
    assert captured[True] > 0.999 and captured[False] < 0.99
    assert psnr[True] > psnr[False] + 3.0


def test_follow_up_that_the_delta_axes_cannot_carry_is_edited_freely_and_sent_in_full(system, face, monkeypatch):
    s = system.session(face, ChannelConfig("awgn", 30.0), seed=0)
    s.send("smile")
    useless = torch.zeros(24, 1)
    useless[0, 0] = 1.0  # one latent coordinate: not enough to make the face older
    monkeypatch.setattr(system.tx.delta, "subspace", lambda snr_db=None: useless)
    t = s.send("now older")
    assert t.kind == "full" and t.symbols == 12 and t.edit_met
    monkeypatch.undo()
    t2 = s.send("a bit more")  # the policy's normal path again
    assert t2.kind == "delta" and t2.edit_met
