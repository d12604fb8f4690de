"""Editable-DeepSC end to end: transmitter, channel, receiver and multi-turn sessions.

::

    image ──► Transmitter ──────────────────────────────────────────► symbols ──► Channel ──► Receiver ──► image
              invert (e4e) → parse (MiniLM) → edit (W+) → channel enc.                       channel dec. → generator

* :class:`Transmitter` — image semantic encoder (alignment + inversion into W+),
  text semantic encoder (instruction parser), semantic editing module and the
  channel encoder (the learned SNR-aware semantic codec).
* :class:`Receiver` — channel decoder and generator.
* :class:`EditableDeepSC` — composes both with one :class:`SystemConfig`;
  :meth:`EditableDeepSC.edit` runs one instruction end to end and returns an
  :class:`~editable_deepsc.records.EditOutcome` with timings per stage, attribute
  scores before/after at the transmitter and after reception, identity similarity
  and the channel cost. Every latent crosses the channel through
  :func:`editable_deepsc.channel.link.send_latent`.
* :meth:`EditableDeepSC.session` starts a multi-turn
  :class:`~editable_deepsc.session.Session` (conversational editing; follow-ups
  send only the edit delta).

The CLI (``edsc edit``, ``edsc chat``), the benches and the web demo all use this API.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from editable_deepsc.channel.link import check_finite, send_latent
from editable_deepsc.config import ChannelConfig, SystemConfig
from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.receiver import Receiver
from editable_deepsc.records import EditOutcome, Link
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.session import Session
from editable_deepsc.timing import timed
from editable_deepsc.transmitter import Transmitter
from editable_deepsc.verify.rounds import DEFAULT_CORRECTION, MAX_ROUNDS, Verifier, goals_of

if TYPE_CHECKING:
    from editable_deepsc.text.targets import ParsedInstruction


class EditableDeepSC:
    """The whole system: :class:`Transmitter` + channel + :class:`Receiver`.

    Build it with :meth:`load` (zoo names from a :class:`SystemConfig`) or
    directly from modules (tests, custom models).

    Examples
    --------
    >>> system = EditableDeepSC.load()                                      # doctest: +SKIP
    >>> out = system.edit(image, "make her smile", ChannelConfig("awgn", 6))  # doctest: +SKIP
    >>> out.rx_image.shape, out.link.symbols
    """

    def __init__(self, transmitter: Transmitter, receiver: Receiver, config: SystemConfig, guidance=None):
        self.tx, self.rx, self.config = transmitter, receiver, config
        self.guidance = guidance if guidance is not None else getattr(transmitter.editor, "guidance", None)
        self.verifier = Verifier(self)

    @classmethod
    def load(cls, config: SystemConfig | None = None, device: str = "cpu", models: str | None = None) -> "EditableDeepSC":
        """Load every model of ``config`` from the zoo (sha256-checked).

        Parameters
        ----------
        config : SystemConfig, optional
            Default: ``SystemConfig(models=models)``.
        device : str
        models : str, optional
            Model set name (e.g. ``"faces64"``); must agree with ``config.models`` when both are given.

        Raises
        ------
        BadInput
            Unknown model set, or ``models`` contradicting ``config``.
        CheckpointError
            A model the system needs is missing or corrupt (named in the message).
        """
        if config is None:
            config = SystemConfig() if models is None else SystemConfig(models=models)
        elif models is not None and models != config.models:
            raise BadInput(f"models={models!r} contradicts the config's model set {config.models!r}")
        tx = Transmitter.load(config)
        return cls(tx, Receiver(tx.generator, tx.codec, tx.delta), config)

    # ------------------------------------------------------------------ helpers
    @property
    def generator(self):
        return self.tx.generator

    def cbr(self, symbols: int) -> float:
        """CBR of ``symbols`` complex channel uses for one generator-sized RGB image."""
        r = self.generator.resolution
        return symbols / (3 * r * r)

    @torch.no_grad()
    def measure(self, images: torch.Tensor, attributes: tuple[str, ...]) -> dict[str, float]:
        """Attribute values of one image (1, 3, R, R) → {attribute: float} (empty without face nets)."""
        if self.guidance is None or not hasattr(self.guidance, "measure") or not attributes:
            return {}
        vals = self.guidance.measure(images, tuple(attributes))
        return {a: float(v.reshape(-1)[0]) for a, v in vals.items()}

    @torch.no_grad()
    def identity(self, images: torch.Tensor, reference: torch.Tensor) -> float | None:
        """Identity similarity (cosine of face descriptors) of two images, or None without face nets."""
        if self.guidance is None or not hasattr(self.guidance, "identity_similarity"):
            return None
        return float(self.guidance.identity_similarity(images, reference).reshape(-1)[0])

    def send_full(self, w: torch.Tensor, channel: ChannelConfig, rng: torch.Generator) -> Link:
        """Send a whole latent through the semantic codec; return what the receiver got."""
        return Link.of("full", send_latent(w, self.tx.encode, self.rx.decode, channel, rng))

    def send_delta(self, delta: torch.Tensor, w_rx_prev: torch.Tensor, channel: ChannelConfig,
                   rng: torch.Generator) -> Link:
        """Send an edit delta; the receiver adds its estimate to ``w_rx_prev``."""
        if self.tx.delta is None:
            raise BadInput("this system has no delta codec (no edit-delta statistics in the zoo)")

        def decode(y: torch.Tensor, snr_rx: torch.Tensor) -> torch.Tensor:
            return w_rx_prev + self.rx.decode_delta(y, snr_rx, float(channel.snr_db))

        return Link.of("delta", send_latent(delta, self.tx.encode_delta, decode, channel, rng))

    def prepare_input(self, image: torch.Tensor, face: int | None = None):
        """Check a user's image for a face (whatever its size) and align it → ``PreparedImage``.

        Pass ``.image`` on to :meth:`edit` or :meth:`session`; ``.face_json()`` says which face
        was used and how many were found.

        Raises
        ------
        NoFaceFound, ImageError, BadInput
        """
        return self.tx.prepare(image, face=face, check_face=True)

    def invert_image(self, image, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Align (unless ``image`` is already a ``PreparedImage``) + invert:
        → (aligned image (1,3,R,R), w0 (1,num_ws,w_dim), seconds)."""
        t0 = time.perf_counter()
        prepared = image if hasattr(image, "aligned") else self.tx.prepare(image)
        w0 = self.tx.invert(prepared if self.tx.takes_photos else prepared.image, seed=seed)
        check_finite(w0, "inverted latent")
        return prepared.image, w0, time.perf_counter() - t0

    # ------------------------------------------------------------------ one instruction
    def edit(self, image: torch.Tensor, instruction: "str | ParsedInstruction", channel: ChannelConfig,
             seed: int = 0, strength: float = 1.0, record_every: int = 0,
             w0: torch.Tensor | None = None, verify_rx: bool = False, max_rounds: int = MAX_ROUNDS,
             correction: str = DEFAULT_CORRECTION, resend_k: int | None = None) -> EditOutcome:
        """Edit one image under one instruction and send the edited latent over ``channel``.

        Parameters
        ----------
        image : Tensor, float32, shape (1, 3, H, W) in [-1, 1], or PreparedImage
            A generator-sized face or a larger square photo (aligned first); for a full-size set
            (``ffhq``) a photo of any shape, or what :meth:`prepare_input` made of it (then the
            edit keeps identity against the photo and the outcome reports the identity
            distance to it).
        instruction : str or ParsedInstruction
        channel : ChannelConfig
        seed : int
            Seeds the editor's and the channel's randomness.
        strength : float
            Multiplies the instruction's strengths.
        record_every : int
            Keep the edit trajectory every this many steps (``--save-steps``).
        w0 : Tensor, optional
            Skip inversion and edit this latent (``image`` is then the aligned source).
        verify_rx : bool
            Receiver-verified edit (:mod:`editable_deepsc.verify`): the goals travel as side
            information, the receiver checks its synthesis with the face nets and asks for up to
            ``max_rounds`` corrections; ``outcome.verify`` holds the rounds and their symbols.
        max_rounds : int
            Correction rounds allowed, 0 to :data:`~editable_deepsc.verify.rounds.MAX_ROUNDS`.
        correction : {"delta", "resend"}
            Strengthen the edit by a delta in the set's delta codec, or send the latent again at
            more symbols (``resend_k``: the codec's ``k``, default the set's next larger).

        Raises
        ------
        UnsupportedInstruction
            The parser or the editor refuses the instruction; nothing is transmitted.
        ImageError, NoFaceFound, BadInput
            ``BadInput`` also for a correction the set cannot make (``delta`` without delta statistics).
        """
        if verify_rx:
            self.verifier.check(correction, max_rounds)
            if correction == "resend":
                self.verifier.resend_k(resend_k)
        timings: dict[str, float] = {}
        with timed(timings, "parse"):
            parsed = self.tx.understand(instruction) if isinstance(instruction, str) else instruction
        if not parsed.targets:
            raise UnsupportedInstruction(f"{parsed.text!r} is a session command (more/less/undo/start over); "
                                         "it needs a previous edit: use `edsc chat` or a Session", supported=[])
        photo = getattr(image, "target", None)
        if photo is None and self.tx.takes_photos and w0 is None:
            image = self.prepare_input(image)
            photo = image.target
        with timed(timings, "invert"):
            if w0 is None:
                source, w0, _ = self.invert_image(image, seed=seed)
            else:
                source = getattr(image, "image", image)
                check_finite(w0, "latent")
        rng = make_generator(derive_seed(seed, "edit", channel.name, channel.snr_db))
        with timed(timings, "edit"):
            res = self.tx.edit(w0, parsed, strength, channel, rng, record_every=record_every,
                               identity_reference=source if photo is not None else None)
        check_finite(res.w_plus, "edited latent")
        attrs = tuple(dict.fromkeys(parsed.attributes))
        with torch.no_grad():
            src_recon = self.rx.synthesise(w0)
        scores_before = self.measure(src_recon, attrs)
        first_seed = derive_seed(seed, "channel", channel.snr_db)
        verified = None
        if verify_rx:
            with timed(timings, "verify"):
                verified = self.verifier.send(w0, res.w_plus, goals_of(parsed.targets, scores_before, strength),
                                              channel, seed, correction=correction, max_rounds=max_rounds,
                                              first_seed=first_seed, resend_k=resend_k)
            link = Link.of("full", verified.first)
            link.w_rx = verified.w_rx[-1]
        else:
            link = self.send_full(res.w_plus, channel, make_generator(first_seed))
            timings.update(link.timings)
        with timed(timings, "synthesise"):
            rx_image = self.rx.synthesise(link.w_rx)
        with torch.no_grad():  # the transmitter's edit as the receiver would show it without noise
            tx_image = res.images if res.images.shape[-1] == rx_image.shape[-1] else self.rx.synthesise(res.w_plus)
        return EditOutcome(
            parsed=parsed, source=source, tx_image=tx_image.clamp(-1, 1), rx_image=rx_image, w0=w0,
            w_edit=res.w_plus, w_rx=link.w_rx, edit=res, link=link, channel=channel, timings=timings,
            scores_before=scores_before, scores_tx=self.measure(tx_image, attrs),
            scores_rx=self.measure(rx_image, attrs), identity_tx=self.identity(tx_image, source),
            identity_rx=self.identity(rx_image, source), seed=seed, system=self.config.to_json(), verify=verified,
            photo=photo, identity_to_photo=None if photo is None else self.tx.identity_to_photo(
                photo, tx_image, rx_image, getattr(self.guidance, "analyzer", None)),
        )

    def session(self, image: torch.Tensor, channel: ChannelConfig, seed: int = 0, verify_rx: bool = False,
                max_rounds: int = MAX_ROUNDS, correction: str = DEFAULT_CORRECTION,
                resend_k: int | None = None) -> Session:
        """Start a multi-turn :class:`Session` on ``image`` (``verify_rx``: receiver-verified turns)."""
        return Session(self, image, channel, seed=seed, verify_rx=verify_rx, max_rounds=max_rounds,
                       correction=correction, resend_k=resend_k)


__all__ = ["EditableDeepSC", "Receiver", "SystemConfig", "Transmitter"]
