"""Conversational editing: a :class:`Session` of :class:`Turn` s over a simulated channel.

The first turn sends the edited latent in full; follow-ups ("a bit more", "now
make him older") send only the edit delta through the
:class:`~editable_deepsc.channel.delta.DeltaCodec`, with a full refresh every
``refresh_every`` turns so that errors cannot pile up; ``undo`` reverts both
ends without sending anything. Start one with
:meth:`EditableDeepSC.session <editable_deepsc.system.EditableDeepSC.session>`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.link import check_finite
from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.text.targets import EditTarget, ParsedInstruction
from editable_deepsc.timing import timed
from editable_deepsc.verify.rounds import DEFAULT_CORRECTION, MAX_ROUNDS, goals_of

if TYPE_CHECKING:  # the system module imports this one
    from editable_deepsc.system import EditableDeepSC


def continue_targets(last: tuple[EditTarget, ...], strength: float, reverse: bool) -> tuple[EditTarget, ...]:
    """Targets that repeat (or reverse) the last turn's targets at ``strength`` times their strength.

    "set" targets are not continued (setting twice is the same edit).
    """
    out = []
    for t in last:
        if t.direction == "set":
            continue
        d = t.direction if not reverse else ("less" if t.direction == "more" else "more")
        out.append(EditTarget(t.attribute, d, strength=min(4.0, max(0.05, t.strength * strength))))
    return tuple(out)


@dataclass
class Turn:
    """One turn of a :class:`Session`.

    Attributes
    ----------
    index : int
        0-based turn number.
    instruction : str
    action : {"edit", "undo", "reset"}
    kind : {"full", "delta", "none"}
        How the latent crossed the channel ("none": undo, nothing sent).
    targets : list of str
        Readable targets.
    symbols : int
        Complex channel uses this turn.
    cbr : float
    snr_db : float
    channel : str
    rx_image, tx_image : Tensor (1, 3, R, R)
        What the receiver shows / what the transmitter meant.
    psnr, ssim : float
        Received image against the transmitter's intended image.
    scores_tx, scores_rx : dict of str to float
    identity_rx : float or None
        Received image vs the session's source face.
    edit_met : bool or None
        Whether the transmitter's edit met all its targets (None: undo, reset).
    power : float
        Average power of the symbols sent.
    timings : dict of str to float
    rounds : int
        Correction rounds of a receiver-verified turn (0 otherwise); ``symbols`` then counts every
        forward symbol of the turn (side information and corrections included).
    feedback_symbols : int
        The receiver's feedback symbols of a verified turn.
    verify : dict or None
        The verified turn's rounds (:meth:`~editable_deepsc.verify.rounds.VerifiedLink.to_json`).
    """

    index: int
    instruction: str
    action: str
    kind: str
    targets: list[str]
    symbols: int
    cbr: float
    snr_db: float
    channel: str
    rx_image: torch.Tensor
    tx_image: torch.Tensor
    psnr: float
    ssim: float
    scores_tx: dict[str, float] = field(default_factory=dict)
    scores_rx: dict[str, float] = field(default_factory=dict)
    identity_rx: float | None = None
    edit_met: bool | None = None
    power: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    feedback_symbols: int = 0
    verify: dict | None = None

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("rx_image", "tx_image")}
        d["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        return d


class Session:
    """Conversational editing of one image over a simulated channel.

    Parameters
    ----------
    system : EditableDeepSC
    image : Tensor, float32, shape (1, 3, H, W)
        The user's image (aligned and inverted once, at the start).
    channel : ChannelConfig
        Initial channel; :meth:`set_channel` changes it mid-session.
    seed : int
    verify_rx : bool
        Receiver-verified turns (:mod:`editable_deepsc.verify`): every edit's goals travel as side
        information (relative to the transmitter's previous image), the receiver checks its image
        and asks for up to ``max_rounds`` corrections of kind ``correction``.
    max_rounds, correction, resend_k
        As in :meth:`EditableDeepSC.edit <editable_deepsc.system.EditableDeepSC.edit>`.

    Notes
    -----
    Both ends keep a history of latents: the transmitter of what it meant
    (``w_tx``), the receiver of what it decoded (``w_rx``). A follow-up sends
    ``w_tx[t] − w_tx[t−1]`` through the delta codec and the receiver adds it to
    ``w_rx[t−1]``; every ``refresh_every``-th edit since the last full
    transmission sends the full latent instead. ``undo`` pops both histories.
    """

    def __init__(self, system: "EditableDeepSC", image: torch.Tensor, channel: ChannelConfig, seed: int = 0,
                 verify_rx: bool = False, max_rounds: int = MAX_ROUNDS, correction: str = DEFAULT_CORRECTION,
                 resend_k: int | None = None):
        if verify_rx:
            system.verifier.check(correction, max_rounds)
            if correction == "resend":
                system.verifier.resend_k(resend_k)
        self.verify = dict(max_rounds=int(max_rounds), correction=correction, resend_k=resend_k) if verify_rx else None
        self.system, self.channel, self.seed = system, channel, int(seed)
        #: full-size sets: the user's photo (``PhotoTarget``); edits keep identity against its aligned crop
        self.photo = getattr(image, "target", None)
        self.source, self.w_source, self.invert_seconds = system.invert_image(image, seed=seed)
        self.w_tx: list[torch.Tensor] = []
        self.w_rx: list[torch.Tensor] = []
        self.kinds: list[str] = []
        self.last_targets: list[tuple[EditTarget, ...]] = []
        self.turns: list[Turn] = []

    # ------------------------------------------------------------------ state
    @property
    def current_rx_image(self) -> torch.Tensor:
        """What the receiver shows now (the source reconstruction before any turn)."""
        w = self.w_rx[-1] if self.w_rx else self.w_source
        return self.system.rx.synthesise(w)

    def set_channel(self, channel: ChannelConfig) -> None:
        """Change the channel (name / SNR) for the following turns."""
        if not isinstance(channel, ChannelConfig):
            raise BadInput("set_channel takes a ChannelConfig")
        self.channel = channel

    def _turn_seed(self, *keys) -> int:
        return derive_seed(self.seed, "turn", len(self.turns), *keys)

    def _parse(self, text: str) -> ParsedInstruction:
        """Parse ``text``; resolve the parser's "more"/"less" follow-ups against the last edit's targets."""
        last = self.last_targets[-1] if self.last_targets else ()
        parsed = self.system.tx.understand(text)
        fu = getattr(parsed, "followup", None)
        if fu is None or fu.kind in ("undo", "reset"):
            return parsed
        targets = continue_targets(last, fu.strength, reverse=fu.kind == "reverse")
        if not targets:
            raise UnsupportedInstruction(f"{text!r} continues the previous edit, but there is none to continue yet",
                                         supported=[], nearest=None)
        return ParsedInstruction(text=text, targets=targets, confidence=parsed.confidence, meta={"follow_up": True})

    # ------------------------------------------------------------------ turns
    def send(self, text: str, strength: float = 1.0) -> Turn:
        """Apply one instruction and transmit the result; return the turn's record.

        Raises
        ------
        UnsupportedInstruction
            Refused (nothing sent, session unchanged).
        """
        sysm, ch = self.system, self.channel
        timings: dict[str, float] = {}
        with timed(timings, "parse"):
            parsed = self._parse(text)
        fu = getattr(parsed, "followup", None)
        if fu is not None and fu.kind == "undo":
            return self.undo()
        w_prev = self.w_tx[-1] if self.w_tx else self.w_source
        kinds_reset = fu is not None and fu.kind == "reset"
        since_full = 0
        for k in reversed(self.kinds):
            if k == "full":
                break
            since_full += 1
        use_delta = bool(not kinds_reset and sysm.tx.delta is not None and self.w_rx and self.kinds
                         and since_full + 1 < sysm.config.refresh_every)
        met = None
        if kinds_reset:
            w_new, tx_img, action = self.w_source, self.system.rx.synthesise(self.w_source), "reset"
        else:
            rng = make_generator(self._turn_seed("edit"))
            subspace = sysm.tx.delta.subspace(ch.snr_db) if use_delta and sysm.config.delta_subspace else None
            ref = self.source if self.photo is not None else None
            with timed(timings, "edit"):
                res = sysm.tx.edit(w_prev, parsed, strength, ch, rng, subspace=subspace, identity_reference=ref)
                if subspace is not None and not bool(res.met.all()):
                    # the delta's axes cannot carry this edit: edit freely and send it in full if that works
                    free = sysm.tx.edit(w_prev, parsed, strength, ch, make_generator(self._turn_seed("edit")),
                                        identity_reference=ref)
                    if bool(free.met.all()):
                        res, use_delta = free, False
            tx_img = res.images if self.photo is None else self.system.rx.synthesise(res.w_plus.detach())
            w_new, tx_img, action = res.w_plus.detach(), tx_img.clamp(-1, 1), "edit"
            met = bool(res.met.all())
        check_finite(w_new, "edited latent")
        crng = make_generator(self._turn_seed("channel"))
        if use_delta:
            link = sysm.send_delta(w_new - w_prev, self.w_rx[-1], ch, crng)
        else:
            link = sysm.send_full(w_new, ch, crng)
        timings.update(link.timings)
        verified, kind, w_rx, symbols = None, link.kind, link.w_rx, link.symbols
        if self.verify is not None and action == "edit":
            attrs = tuple(dict.fromkeys(parsed.attributes))
            with timed(timings, "verify"):
                before = sysm.measure(sysm.rx.synthesise(w_prev), attrs)  # what the transmitter meant before
                verified = sysm.verifier.send(w_prev, w_new, goals_of(parsed.targets, before, strength), ch,
                                              self._turn_seed("verify"), first=link, **self.verify)
            w_rx, symbols = verified.w_rx[-1], verified.symbols
            kind = "full" if verified.resent else kind
        with timed(timings, "synthesise"):
            rx_img = sysm.rx.synthesise(w_rx)
        self.w_tx.append(w_new)
        self.w_rx.append(w_rx)
        self.kinds.append(kind)
        self.last_targets.append(tuple(parsed.targets))
        turn = self._record(text, action, link.kind, parsed, symbols, link.power, rx_img, tx_img, timings,
                            edit_met=met)
        if verified is not None:
            turn.rounds, turn.feedback_symbols = verified.corrections, verified.feedback_symbols
            turn.verify = verified.to_json()
        self.turns.append(turn)
        return turn

    def undo(self) -> Turn:
        """Revert the last edit at both ends (nothing is transmitted).

        Raises
        ------
        BadInput
            Nothing to undo.
        """
        if not self.w_tx:
            raise BadInput("nothing to undo")
        self.w_tx.pop()
        self.w_rx.pop()
        self.kinds.pop()
        self.last_targets.pop()
        w_tx = self.w_tx[-1] if self.w_tx else self.w_source
        w_rx = self.w_rx[-1] if self.w_rx else self.w_source
        tx_img, rx_img = self.system.rx.synthesise(w_tx), self.system.rx.synthesise(w_rx)
        parsed = ParsedInstruction(text="undo", targets=())
        turn = self._record("undo", "undo", "none", parsed, 0, 0.0, rx_img, tx_img, {})
        self.turns.append(turn)
        return turn

    def _record(self, text, action, kind, parsed, symbols, power, rx_img, tx_img, timings,
                edit_met: bool | None = None) -> Turn:
        attrs = tuple(dict.fromkeys(a for ts in self.last_targets for a in (t.attribute for t in ts)))
        p = float(psnr(rx_img, tx_img)[0])
        return Turn(
            index=len(self.turns), instruction=text, action=action, kind=kind,
            targets=[t.describe() for t in parsed.targets], symbols=int(symbols),
            cbr=self.system.cbr(symbols), snr_db=self.channel.snr_db, channel=self.channel.name,
            rx_image=rx_img, tx_image=tx_img, psnr=p if math.isfinite(p) else 100.0,
            ssim=float(ssim(rx_img, tx_img)[0]), scores_tx=self.system.measure(tx_img, attrs),
            scores_rx=self.system.measure(rx_img, attrs), identity_rx=self.system.identity(rx_img, self.source),
            edit_met=edit_met, power=float(power), timings=timings,
        )

    def log(self) -> dict:
        """The session as JSON: system config, channel, every turn, symbols in total."""
        return {
            "system": self.system.config.to_json(),
            "seed": self.seed,
            "invert_seconds": round(self.invert_seconds, 4),
            "verify_rx": self.verify,
            "turns": [t.to_json() for t in self.turns],
            "symbols_total": sum(t.symbols for t in self.turns),
        }


__all__ = ["Session", "Turn", "continue_targets"]
