"""Result records of the end-to-end system: one transmission (:class:`Link`) and one edit (:class:`EditOutcome`).

They hold tensors for the caller and turn into the JSON that ``edsc edit --json``
prints (:meth:`EditOutcome.to_json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.link import LinkResult
from editable_deepsc.editing.criteria import target_met
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.text.targets import ParsedInstruction

STAGES: tuple[str, ...] = ("invert", "parse", "edit", "encode", "channel", "decode", "synthesise")
"""Pipeline stages timed by :meth:`EditableDeepSC.edit` (seconds, wall clock)."""


@dataclass
class Link:
    """What one transmission cost and delivered.

    Attributes
    ----------
    kind : {"full", "delta", "none"}
    symbols : int
        Complex channel uses sent.
    power : float
        Measured average symbol power of what was sent.
    w_rx : Tensor, float32, (1, num_ws, w_dim)
        The receiver's latent after this transmission.
    timings : dict of str to float
        ``encode``, ``channel``, ``decode`` seconds.
    sent : LinkResult or None
        What crossed the channel (symbols, gains ``h``, receiver SNR); ``None`` when nothing was sent.
    """

    kind: str
    symbols: int
    power: float
    w_rx: torch.Tensor
    timings: dict[str, float]
    sent: LinkResult | None = field(default=None, repr=False)

    @classmethod
    def of(cls, kind: str, result: LinkResult) -> "Link":
        """The record of one :func:`~editable_deepsc.channel.link.send_latent` call."""
        return cls(kind, result.k, result.power, result.w, result.timings, result)


@dataclass
class EditOutcome:
    """One instruction end to end (:meth:`EditableDeepSC.edit`).

    Attributes
    ----------
    parsed : ParsedInstruction
    source : Tensor, float32 (1, 3, R, R)
        The aligned input image.
    tx_image, rx_image : Tensor, float32 (1, 3, R, R)
        The edit as the transmitter meant it (``G(w_edit)``) and as received.
    w0, w_edit, w_rx : Tensor, float32 (1, num_ws, w_dim)
    edit : EditResult
    link : Link
    channel : ChannelConfig
    timings : dict of str to float
        Seconds per stage, keys :data:`STAGES`.
    scores_before, scores_tx, scores_rx : dict of str to float
        Attribute values of the source, the transmitter's edit and the received image.
    identity_tx, identity_rx : float or None
        Identity similarity of the transmitter's edit / the received image to the source.
    seed : int
    verify : VerifiedLink or None
        The rounds of a receiver-verified edit (``verify_rx=True``); ``link`` is then its first
        transmission with the receiver's final latent.
    photo : PhotoTarget or None
        Full-size sets: the user's photo, its aligned crop and the alignment transform.
    identity_to_photo : dict or None
        Full-size sets: face-api descriptor distances of the transmitter's and the received
        image to the source photo, with the same-person threshold.
    """

    parsed: ParsedInstruction
    source: torch.Tensor
    tx_image: torch.Tensor
    rx_image: torch.Tensor
    w0: torch.Tensor
    w_edit: torch.Tensor
    w_rx: torch.Tensor
    edit: Any
    link: Link
    channel: ChannelConfig
    timings: dict[str, float]
    scores_before: dict[str, float] = field(default_factory=dict)
    scores_tx: dict[str, float] = field(default_factory=dict)
    scores_rx: dict[str, float] = field(default_factory=dict)
    identity_tx: float | None = None
    identity_rx: float | None = None
    seed: int = 0
    system: dict = field(default_factory=dict)
    verify: Any = None
    photo: Any = None
    identity_to_photo: dict | None = None

    @property
    def symbols(self) -> int:
        """Forward complex symbols in total: the latent, plus side information and corrections when verified."""
        return int(self.verify.symbols) if self.verify is not None else int(self.link.symbols)

    def to_json(self) -> dict:
        """JSON-friendly record (no tensors) with the fields ``edsc edit --json`` prints.

        ``k``/``cbr``: the first transmission of the latent; ``symbols``/``cbr_total``: every forward
        symbol of the turn (side information and corrections of a verified edit included);
        ``rounds``: correction rounds (0 unverified); ``feedback_symbols``: the receiver's feedback
        bits; ``verify``: the rounds in detail (``None`` unverified).
        """
        r = self.generator_resolution
        timings = {s: round(self.timings.get(s, 0.0), 4) for s in STAGES}
        if "verify" in self.timings:
            timings["verify"] = round(self.timings["verify"], 4)
        return {
            "instruction": self.parsed.text,
            "targets": [asdict(t) for t in self.parsed.targets],
            "targets_readable": [t.describe() for t in self.parsed.targets],
            "snr_db": self.channel.snr_db,
            "channel": self.channel.name,
            "k": self.link.symbols,
            "cbr": self.link.symbols / (3 * r * r),
            "symbols": self.symbols,
            "cbr_total": self.symbols / (3 * r * r),
            "rounds": 0 if self.verify is None else self.verify.corrections,
            "feedback_symbols": 0 if self.verify is None else self.verify.feedback_symbols,
            "verify": None if self.verify is None else self.verify.to_json(),
            "image_size": [r, r],
            "timings": timings,
            "seconds_total": round(sum(self.timings.values()), 4),
            "scores_before": self.scores_before,
            "scores_tx": self.scores_tx,
            "scores_rx": self.scores_rx,
            "target_met_tx": self.target_met_tx,
            "edit_verified": bool(getattr(self.edit, "verified", True)),
            "identity_tx": self.identity_tx,
            "identity_rx": self.identity_rx,
            "identity_to_photo": self.identity_to_photo,
            "rx_vs_tx": {"psnr": float(psnr(self.rx_image, self.tx_image)[0]),
                         "ssim": float(ssim(self.rx_image, self.tx_image)[0])},
            "edit_steps": int(self.edit.steps.max()),
            "preset": self.edit.config.preset,
            "jecc": bool(self.edit.jecc),
            "seed": self.seed,
            "system": self.system,
            **({} if self.photo is None else {"transform": self.photo.transform.to_json()}),
        }

    @property
    def target_met_tx(self) -> bool:
        """Whether the transmitter's edit meets every target, as measured by the face nets.

        A checked edit (``fast``, ``paper``) says so itself; for an ``instant`` edit,
        whose ``met`` is the latent critic's prediction, the measured ``scores_before``
        and ``scores_tx`` decide.
        """
        if getattr(self.edit, "verified", True) or not self.scores_tx:
            return bool(self.edit.met.all())
        return all(
            bool(target_met(t, torch.tensor([self.scores_before[t.attribute]]),
                            torch.tensor([self.scores_tx[t.attribute]]), self.edit.strength)[0])
            for t in self.parsed.targets
        )  # fmt: skip

    @property
    def generator_resolution(self) -> int:
        """Side of the image the receiver shows (the full synthesis)."""
        return int(self.rx_image.shape[-1])


__all__ = ["EditOutcome", "Link", "STAGES"]
