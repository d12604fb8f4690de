"""Receiver-verified edits: send, check at the receiver, ask for a correction, up to ``max_rounds``.

::

    transmitter                                   receiver
    goals = goal_value(targets, v0 = scores of G(w0))
    side info (goals) + w_edit ──── round 0 ────► ŵ, goals → G(ŵ) → face nets → met?
                       ◄──── feedback bit (ACK / NACK) ────
    NACK: correction  ──────────── round 1 ────► ŵ' → met? …   (at most max_rounds corrections)

**What the receiver knows**: the goals of the side information
(:mod:`editable_deepsc.verify.side_info`: attribute, direction and the goal the transmitter's
own criterion uses, computed from the source's scores, which only the transmitter can
measure), the nominal SNR and the models of the set. It judges its own synthesis with the
face nets and :func:`~editable_deepsc.editing.criteria.meets_goal`. It does not know the
source photo, so identity is not checked at the receiver.

**Corrections** (``correction=``):

* ``"delta"`` -- the transmitter strengthens the edit: it sends ``step · (w_edit − w0)``
  through the set's :class:`~editable_deepsc.channel.delta.DeltaCodec` and the receiver adds
  the estimate to its latent (the follow-up mechanism of sessions). Received edits fail
  mostly because the codec's estimate shrinks towards the mean latent (the edit is
  weakened); a push along the edit's own direction compensates, at a quarter of a full
  latent's symbols. Needs the set's delta statistics (member ``delta``).
* ``"resend"`` -- the transmitter sends ``w_edit`` again through a codec of the set with
  more symbols (default: the next larger ``k``, else the same), and the receiver fuses
  the estimates (:meth:`Verifier.fuse`): each decoder output is treated as a posterior mean
  ``ŵ_i`` with normalised error ``n_i`` (measured once per codec, channel and SNR on
  generator samples, :meth:`Verifier.error_of`), prior mean ``μ``:
  ``1/n = Σ 1/n_i − (m − 1)``, ``ŵ − μ = n · Σ (ŵ_i − μ) / n_i`` (the Gaussian fusion of
  posteriors that share one prior), or, with ``combine=False``, keeps the last estimate.

Feedback: after each round the receiver sends one bit (ACK when met, NACK when not, while
rounds are left), a repetition code sized for the SNR
(:func:`~editable_deepsc.verify.side_info.feedback_symbols`) over the same channel; a lost
NACK ends the exchange, a false NACK makes the transmitter send a correction the receiver
discards. Forward symbols (side information, latents, corrections) and feedback symbols are
counted per round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from editable_deepsc.channel.codec_zoo import load_codec
from editable_deepsc.channel.link import LinkResult, pass_channel, send_latent
from editable_deepsc.editing.criteria import goal_value, meets_goal
from editable_deepsc.errors import BadInput
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.verify.side_info import (Goal, decode_feedback, decode_goals, encode_feedback, encode_goals,
                                              quantise)
from editable_deepsc.vocab import CORRECTIONS, DEFAULT_CORRECTION, DELTA_STEP, MAX_VERIFY_ROUNDS
from editable_deepsc.zoo.sets import load_set

if TYPE_CHECKING:
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.system import EditableDeepSC
    from editable_deepsc.text.targets import EditTarget

MAX_ROUNDS = MAX_VERIFY_ROUNDS
"""Most correction rounds a verified edit may take."""
CALIBRATION_SAMPLES = 256
"""Generator samples on which a codec's normalised error is measured for fusion."""


@dataclass
class Round:
    """One round of a verified edit.

    Attributes
    ----------
    index : int
        0 = the first transmission, then the corrections.
    kind : {"full", "delta", "resend"}
    k : int
        Symbols of the latent or correction of this round.
    side_symbols : int
        Side-information symbols sent with it (round 0 only).
    feedback_symbols : int
        Symbols of the feedback bit after it (0 when no feedback follows).
    met_rx : bool or None
        The receiver's check after this round (``None``: it could not check).
    nack : bool
        The receiver asked for a correction.
    heard_nack : bool
        The transmitter decoded a request for a correction.
    used : bool
        The receiver took this round's estimate (it discards a correction it did not ask for).
    """

    index: int
    kind: str
    k: int
    side_symbols: int = 0
    feedback_symbols: int = 0
    met_rx: bool | None = None
    nack: bool = False
    heard_nack: bool = False
    used: bool = True

    @property
    def symbols(self) -> int:
        """Forward symbols of the round (latent or correction + side information)."""
        return int(self.k + self.side_symbols)

    def to_json(self) -> dict:
        return {"index": self.index, "kind": self.kind, "k": self.k, "side_symbols": self.side_symbols,
                "symbols": self.symbols, "feedback_symbols": self.feedback_symbols, "met_rx": self.met_rx,
                "nack": self.nack, "heard_nack": self.heard_nack, "used": self.used}


@dataclass
class VerifiedLink:
    """What a verified transmission sent, the receiver's latent after each round and its checks.

    Attributes
    ----------
    rounds : list of Round
    w_rx : list of Tensor, float32, (1, num_ws, w_dim)
        The receiver's latent after each round (``w_rx[-1]`` is what it shows).
    goals_sent, goals_rx : list of Goal
        Side information as sent (quantised) and as decoded.
    correction : str
    first : LinkResult
        Round 0's transmission of the latent (symbols, gains, receiver SNR).
    """

    rounds: list[Round]
    w_rx: list[torch.Tensor]
    goals_sent: list[Goal]
    goals_rx: list[Goal]
    correction: str
    first: LinkResult | None = None

    @property
    def corrections(self) -> int:
        """Correction rounds sent (0 when the first transmission was accepted)."""
        return len(self.rounds) - 1

    @property
    def symbols(self) -> int:
        """Forward symbols in total (side information, latent, corrections)."""
        return sum(r.symbols for r in self.rounds)

    @property
    def feedback_symbols(self) -> int:
        """Reverse-link symbols in total (feedback bits)."""
        return sum(r.feedback_symbols for r in self.rounds)

    @property
    def resent(self) -> bool:
        """Whether the receiver's latent now rests on a resent full latent (a session counts it as full)."""
        return any(r.kind == "resend" and r.used for r in self.rounds)

    @property
    def side_ok(self) -> bool:
        """Whether the receiver decoded the side information without error."""
        return self.goals_rx == self.goals_sent

    def to_json(self) -> dict:
        return {"correction": self.correction, "corrections": self.corrections, "symbols": self.symbols,
                "feedback_symbols": self.feedback_symbols, "side_info_ok": self.side_ok,
                "met_rx": self.rounds[-1].met_rx, "goals": [g.to_json() for g in self.goals_sent],
                "rounds": [r.to_json() for r in self.rounds]}


def goals_of(targets: Sequence["EditTarget"], scores_source: dict[str, float], strength: float = 1.0) -> list[Goal]:
    """The goals the transmitter's criterion uses for ``targets`` at the source's scores, quantised as sent.

    Raises
    ------
    BadInput
        A target's attribute has no source score (no face nets).
    """
    out = []
    for t in targets:
        if t.attribute not in scores_source:
            raise BadInput(f"verifying at the receiver needs the face nets' score of {t.attribute!r}")
        g = goal_value(t, torch.tensor([float(scores_source[t.attribute])]), strength)
        out.append(quantise(Goal(t.attribute, t.direction, float(g[0]))))
    return out


class Verifier:
    """Runs verified transmissions for one system; keeps the extra codecs and their error models.

    Parameters
    ----------
    system : EditableDeepSC
    """

    def __init__(self, system: "EditableDeepSC"):
        self.system = system
        self._codecs: dict[int, object] = {}
        self._errors: dict[tuple, tuple[float, torch.Tensor]] = {}

    # ------------------------------------------------------------------ models
    def check(self, correction: str, max_rounds: int) -> None:
        """Refuse a correction the system cannot make (before anything is sent).

        Raises
        ------
        BadInput
            Unknown correction, ``max_rounds`` out of [0, :data:`MAX_ROUNDS`], no delta codec for
            ``"delta"`` (naming the model set), no face nets.
        """
        if correction not in CORRECTIONS:
            raise BadInput(f"unknown correction {correction!r} (choose from: {', '.join(CORRECTIONS)})")
        if not 0 <= int(max_rounds) <= MAX_ROUNDS:
            raise BadInput(f"max_rounds must be in [0, {MAX_ROUNDS}], got {max_rounds}")
        if correction == "delta" and self.system.tx.delta is None:
            raise BadInput(f"model set {self.system.config.models!r} has no delta codec (member 'delta'): "
                           "use the 'resend' correction")
        g = self.system.guidance
        if g is None or not hasattr(g, "measure"):
            raise BadInput("verifying at the receiver needs the face nets (a guidance that measures attributes)")

    def resend_k(self, k: int | None = None) -> int:
        """``k`` of the resend codec: ``k`` if given, else the set's next larger than the first codec's, else it."""
        first = int(self.system.tx.codec.k)
        have = sorted(load_set(self.system.config.models).codecs())
        if k is not None:
            if int(k) != first and int(k) not in have:
                raise BadInput(f"model set {self.system.config.models!r} has no codec with k={k} "
                               f"(it has k = {', '.join(map(str, have))})")
            return int(k)
        larger = [c for c in have if c > first]
        return larger[0] if larger else first

    def codec(self, k: int):
        """The semantic codec with ``k`` symbols (the system's own, or the set's, loaded once)."""
        if int(k) == int(self.system.tx.codec.k):
            return self.system.tx.codec
        if int(k) not in self._codecs:
            name = load_set(self.system.config.models).codec(int(k))
            self._codecs[int(k)] = load_codec(name, generator=self.system.generator).eval()
        return self._codecs[int(k)]

    @torch.no_grad()
    def error_of(self, codec, channel: "ChannelConfig") -> tuple[float, torch.Tensor]:
        """(normalised error ``n = E‖ŵ − w‖² / E‖w − μ‖²``, prior mean ``μ`` (num_ws, w_dim)) of ``codec``
        at ``channel``, measured once on :data:`CALIBRATION_SAMPLES` generator samples (fixed seeds)."""
        key = (int(codec.k), id(codec), channel.name, float(channel.snr_db))
        if key not in self._errors:
            gen = self.system.generator
            rng = torch.Generator().manual_seed(derive_seed(0, "verify", "calibration"))
            z = torch.randn(CALIBRATION_SAMPLES, gen.z_dim, generator=rng)
            w = gen.broadcast(gen.mapping(z))
            mu = w.mean(0)
            sent = send_latent(w, codec.encode, codec.decode, channel,
                               make_generator(derive_seed(0, "verify", "calibration", channel.name, channel.snr_db)))
            n = float((sent.w - w).pow(2).sum() / (w - mu).pow(2).sum())
            self._errors[key] = (min(max(n, 1e-6), 1.0 - 1e-6), mu)
        return self._errors[key]

    @staticmethod
    def fuse(estimates: Sequence[torch.Tensor], errors: Sequence[float], mu: torch.Tensor) -> torch.Tensor:
        """Fuse posterior means ``ŵ_i`` (1, num_ws, w_dim) with normalised errors ``n_i`` around prior ``μ``."""
        inv = sum(1.0 / n for n in errors) - (len(errors) - 1)
        n = 1.0 / max(inv, 1e-6)
        return mu + n * sum((w - mu) / e for w, e in zip(estimates, errors))

    # ------------------------------------------------------------------ the receiver's check
    @torch.no_grad()
    def met_at_receiver(self, w_rx: torch.Tensor, goals: Sequence[Goal]) -> bool | None:
        """The receiver's check: synthesise ``w_rx``, measure the goals' attributes, test every goal."""
        if not goals:
            return None
        attrs = tuple(dict.fromkeys(g.attribute for g in goals))
        scores = self.system.measure(self.system.rx.synthesise(w_rx), attrs)
        return all(bool(meets_goal(g.attribute, g.direction, torch.tensor([g.goal]),
                                   torch.tensor([scores[g.attribute]]))[0]) for g in goals)

    # ------------------------------------------------------------------ one verified transmission
    @torch.no_grad()
    def send(self, w0: torch.Tensor, w_edit: torch.Tensor, goals: Sequence[Goal], channel: "ChannelConfig",
             seed: int, correction: str = "delta", max_rounds: int = MAX_ROUNDS, first_seed: int | None = None,
             resend_k: int | None = None, combine: bool = True, step: float = DELTA_STEP,
             first=None) -> VerifiedLink:
        """Send ``w_edit`` with the goals as side information, verify at the receiver, correct.

        Parameters
        ----------
        w0, w_edit : Tensor, float32, shape (1, num_ws, w_dim)
            The source's and the edited latent (the transmitter's).
        goals : sequence of Goal
            From :func:`goals_of` (quantised).
        channel : ChannelConfig
        seed : int
            Seeds the side information, feedback and correction channels.
        correction : {"delta", "resend"}
        max_rounds : int
            Correction rounds allowed (0: verify only).
        first_seed : int, optional
            Seed of round 0's channel (default derived from ``seed``), so a caller can reproduce
            an unverified transmission exactly.
        resend_k : int, optional
            Codec ``k`` of resend corrections (:meth:`resend_k`).
        combine : bool
            Fuse resent estimates (:meth:`fuse`) rather than keep the last.
        step : float
            Fraction of ``w_edit − w0`` a delta correction adds per round.
        first : Link, optional
            Round 0 as the caller already sent it (a session's turn: ``.kind``, ``.symbols``,
            ``.w_rx``, ``.sent``); default: ``w_edit`` through the system's codec. Resent
            estimates are fused with round 0 only when it was a full latent of that codec.

        Returns
        -------
        VerifiedLink
        """
        self.check(correction, max_rounds)
        sysm, snr = self.system, float(channel.snr_db)
        ch = channel.build()

        def through(x: torch.Tensor, *keys) -> tuple[torch.Tensor, torch.Tensor]:
            y, h, _ = pass_channel(x, ch, torch.full((x.shape[0],), snr), make_generator(derive_seed(seed, *keys)))
            return y, h

        x_side = encode_goals(goals, snr)
        y, h = through(x_side, "verify", "side", snr)
        goals_rx = decode_goals(y, snr, h)
        if first is None:
            rng0 = make_generator(first_seed if first_seed is not None else derive_seed(seed, "channel", snr))
            sent0 = send_latent(w_edit, sysm.tx.encode, sysm.rx.decode, channel, rng0)
            w_first, k_first, kind_first = sent0.w, sent0.k, "full"
        else:
            sent0, w_first, k_first, kind_first = first.sent, first.w_rx, int(first.symbols), first.kind
        rounds = [Round(0, kind_first, int(k_first), side_symbols=int(x_side.shape[1]))]
        w_rx = [w_first]
        estimates: list[torch.Tensor] = []
        errors: list[float] = []
        k2 = self.resend_k(resend_k) if correction == "resend" else None
        mu = None
        if correction == "resend" and combine:
            n0, mu = self.error_of(sysm.tx.codec, channel)
            if kind_first == "full":
                estimates, errors = [w_first], [n0]
        for r in range(max_rounds + 1):
            last = rounds[-1]
            last.met_rx = self.met_at_receiver(w_rx[-1], goals_rx)
            if r == max_rounds:
                break
            last.nack = last.met_rx is False
            x_fb = encode_feedback(last.nack, snr)
            last.feedback_symbols = int(x_fb.shape[1])
            y, h = through(x_fb, "verify", "feedback", r)
            last.heard_nack = decode_feedback(y, h)
            if not last.heard_nack:
                break
            rng = make_generator(derive_seed(seed, "verify", correction, r))
            if correction == "delta":
                link = sysm.send_delta(step * (w_edit - w0), w_rx[-1], channel, rng)
                w_new, k = link.w_rx, link.symbols
            else:
                codec = self.codec(k2)
                sent = send_latent(w_edit, codec.encode, codec.decode, channel, rng)
                k = sent.k
                w_new = sent.w
                if combine and last.nack:
                    estimates.append(sent.w)
                    errors.append(self.error_of(codec, channel)[0])
                    w_new = self.fuse(estimates, errors, mu) if len(estimates) > 1 else sent.w
            used = last.nack  # the receiver discards a correction it did not ask for
            rounds.append(Round(r + 1, correction, int(k), used=used))
            w_rx.append(w_new if used else w_rx[-1])
        return VerifiedLink(rounds=rounds, w_rx=w_rx, goals_sent=list(goals), goals_rx=goals_rx, correction=correction,
                            first=sent0)


__all__ = ["CALIBRATION_SAMPLES", "DEFAULT_CORRECTION", "DELTA_STEP", "MAX_ROUNDS", "Round", "VerifiedLink", "Verifier", "goals_of"]
