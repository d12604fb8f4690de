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
  :class:`EditOutcome` with timings per stage, attribute scores before/after at
  the transmitter and after reception, identity similarity and the channel cost.
* :class:`Session` — conversational editing: the first turn sends the edited
  latent in full; follow-ups ("a bit more", "now make him older") send only the
  edit delta through the :class:`~editable_deepsc.channel.delta.DeltaCodec`,
  with a full refresh every ``refresh_every`` turns so that errors cannot pile
  up; ``undo`` reverts both ends without sending anything.

The CLI (``edsc edit``, ``edsc chat``), the benches and the web demo all use this API.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import torch

from editable_deepsc.channel import make_channel
from editable_deepsc.channel.codec import SemanticCodec, transmit_symbols
from editable_deepsc.channel.delta import DeltaCodec, delta_stats_name, load_delta_statistics
from editable_deepsc.config import ChannelConfig
from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

STAGES: tuple[str, ...] = ("invert", "parse", "edit", "encode", "channel", "decode", "synthesise")
"""Pipeline stages timed by :meth:`EditableDeepSC.edit` (seconds, wall clock)."""


@dataclass(frozen=True)
class SystemConfig:
    """Everything that defines an Editable-DeepSC system (models and policies).

    Parameters
    ----------
    generator : str
        Generator zoo name or path (``edsc-faces64``, a StyleGAN2 checkpoint, ...).
    encoder : str
        Inversion encoder zoo name or path.
    codec : str or None
        Semantic codec zoo name (``None``: the default codec of the generator).
    inversion : {"encoder", "hybrid", "optimize"}
        Image semantic encoder mode.
    preset : {"fast", "paper", "instant"}
        Editing preset (:data:`~editable_deepsc.editing.config.PRESETS`): ``fast``
        (default) and ``paper`` check every edit with the face nets, so
        ``target_met_tx`` and the session's fall-back decisions are measured;
        ``instant`` edits against the latent critic and reports its predictions.
    jecc : bool
        Joint editing-channel coding: edit through codec + sampled channel + decoder.
    delta_k : int or None
        Symbols per follow-up turn (``None``: a quarter of the codec's ``k``).
    refresh_every : int
        Send the full latent again every this many turns (≥ 1; 1 = never send deltas).
    delta_subspace : bool
        Make follow-up edits inside the span of the axes the delta codec sends, so
        that a delta loses nothing to truncation (only channel noise); an edit
        that cannot meet its targets there is made freely and sent in full.
    align : bool
        Detect and align faces in photos larger than the generator's resolution.
    """

    generator: str = "edsc-faces64"
    encoder: str = "edsc-e4e-faces64"
    codec: str | None = None
    inversion: str = "encoder"
    preset: str = "fast"
    jecc: bool = False
    delta_k: int | None = None
    refresh_every: int = 4
    delta_subspace: bool = True
    align: bool = True

    def __post_init__(self) -> None:
        if self.inversion not in ("encoder", "hybrid", "optimize"):
            raise BadInput(f"inversion must be encoder, hybrid or optimize, got {self.inversion!r}")
        if self.preset not in ("fast", "paper", "instant"):
            raise BadInput(f"preset must be fast, paper or instant, got {self.preset!r}")
        if int(self.refresh_every) < 1:
            raise BadInput(f"refresh_every must be >= 1, got {self.refresh_every}")
        if self.delta_k is not None and int(self.delta_k) < 1:
            raise BadInput(f"delta_k must be >= 1, got {self.delta_k}")

    def to_json(self) -> dict:
        return asdict(self)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def _check_finite(w: torch.Tensor, what: str) -> None:
    if not torch.isfinite(w).all():
        raise BadInput(f"{what} contains NaN or inf; refusing to transmit it")


class Transmitter:
    """Image and text semantic encoders, semantic editing module and channel encoder.

    Parameters
    ----------
    generator : StyleGenerator
        The generator whose W+ space is edited (frozen).
    encoder : E4EEncoder or None
        Inversion encoder (``None`` only with ``inversion="optimize"``).
    parser : InstructionParser
        Text semantic encoder + parser.
    editor : Editor
        Semantic editing module.
    codec : SemanticCodec
        Channel encoder (its ``encode`` half is used here).
    delta : DeltaCodec or None
        Follow-up turn encoder.
    config : SystemConfig
    """

    def __init__(self, generator, encoder, parser, editor, codec: SemanticCodec, delta: DeltaCodec | None,
                 config: SystemConfig):
        self.generator, self.encoder, self.parser, self.editor = generator, encoder, parser, editor
        self.codec, self.delta, self.config = codec, delta, config

    def prepare(self, image: torch.Tensor):
        """Check and align one image (1, 3, H, W) in [-1, 1] → ``PreparedImage`` at the generator's size."""
        from editable_deepsc.inversion.prepare import prepare_image

        return prepare_image(image, resolution=self.generator.resolution, align=self.config.align)

    def invert(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Aligned image (1, 3, R, R) → W+ latent (1, num_ws, w_dim) float32."""
        from editable_deepsc.inversion.invert import invert

        out = invert(image, method=self.config.inversion, generator=self.generator, encoder=self.encoder,
                     seed=seed, with_stats=False)
        return out.w_plus.detach()

    def understand(self, text: str) -> ParsedInstruction:
        """Parse an instruction (raises :class:`UnsupportedInstruction`)."""
        return self.parser.parse(text)

    def edit(self, w: torch.Tensor, instruction: ParsedInstruction | tuple[EditTarget, ...], strength: float,
             channel: ChannelConfig, rng: torch.Generator, record_every: int = 0,
             subspace: torch.Tensor | None = None):
        """Run the editor on ``w`` (1, num_ws, w_dim); JECC goes through the codec at ``channel``;
        ``subspace`` (num_ws·w_dim, m) confines the change to a span (follow-ups sent as deltas)."""
        through = None
        if self.config.jecc:
            through = (self.codec, make_channel(channel.name, channel.block_length), channel.snr_db)
        return self.editor.edit(w, instruction, strength=strength, through_channel=through, generator=rng,
                                record_every=record_every, subspace=subspace)

    @torch.no_grad()
    def encode(self, w: torch.Tensor, snr_db: float) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) → (N, k) complex64 channel symbols, unit average power."""
        _check_finite(w, "latent")
        return self.codec.encode(w, snr_db)

    @torch.no_grad()
    def encode_delta(self, delta: torch.Tensor, snr_db: float) -> torch.Tensor:
        """Edit delta (N, num_ws, w_dim) → (N, delta_k) complex64 symbols, shaped for nominal ``snr_db``."""
        _check_finite(delta, "latent delta")
        return self.delta.encode(delta, snr_db)


class Receiver:
    """Channel decoder and generator.

    Parameters
    ----------
    generator : StyleGenerator
    codec : SemanticCodec
        Channel decoder (its ``decode`` half).
    delta : DeltaCodec or None
        Follow-up turn decoder.
    """

    def __init__(self, generator, codec: SemanticCodec, delta: DeltaCodec | None):
        self.generator, self.codec, self.delta = generator, codec, delta

    @torch.no_grad()
    def decode(self, y: torch.Tensor, snr_rx_db: torch.Tensor) -> torch.Tensor:
        """Equalised symbols (N, k) complex64 + receiver SNR (N,) dB → W+ (N, num_ws, w_dim)."""
        return self.codec.decode(y, snr_rx_db)

    @torch.no_grad()
    def decode_delta(self, y: torch.Tensor, snr_rx_db: torch.Tensor, snr_db: float) -> torch.Tensor:
        """Follow-up symbols (N, delta_k) at received SNR ``snr_rx_db`` (nominal ``snr_db``) → LMMSE delta
        estimate (N, num_ws, w_dim)."""
        return self.delta.decode(y, snr_rx_db, snr_db)

    @torch.no_grad()
    def synthesise(self, w: torch.Tensor) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) → images (N, 3, R, R) float32 in [-1, 1]."""
        return self.generator.synthesis(w).clamp(-1, 1)


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
    """

    kind: str
    symbols: int
    power: float
    w_rx: torch.Tensor
    timings: dict[str, float]


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

    def to_json(self) -> dict:
        """JSON-friendly record (no tensors) with the fields ``edsc edit --json`` prints."""
        from editable_deepsc.metrics.image import psnr, ssim

        r = self.generator_resolution
        return {
            "instruction": self.parsed.text,
            "targets": [asdict(t) for t in self.parsed.targets],
            "targets_readable": [t.describe() for t in self.parsed.targets],
            "snr_db": self.channel.snr_db,
            "channel": self.channel.name,
            "k": self.link.symbols,
            "cbr": self.link.symbols / (3 * r * r),
            "image_size": [r, r],
            "timings": {s: round(self.timings.get(s, 0.0), 4) for s in STAGES},
            "seconds_total": round(sum(self.timings.values()), 4),
            "scores_before": self.scores_before,
            "scores_tx": self.scores_tx,
            "scores_rx": self.scores_rx,
            "target_met_tx": self.target_met_tx,
            "edit_verified": bool(getattr(self.edit, "verified", True)),
            "identity_tx": self.identity_tx,
            "identity_rx": self.identity_rx,
            "rx_vs_tx": {"psnr": float(psnr(self.rx_image, self.tx_image)[0]),
                         "ssim": float(ssim(self.rx_image, self.tx_image)[0])},
            "edit_steps": int(self.edit.steps.max()),
            "preset": self.edit.config.preset,
            "jecc": bool(self.edit.jecc),
            "seed": self.seed,
            "system": self.system,
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
        from editable_deepsc.editing.criteria import target_met

        return all(
            bool(target_met(t, torch.tensor([self.scores_before[t.attribute]]),
                            torch.tensor([self.scores_tx[t.attribute]]), self.edit.strength)[0])
            for t in self.parsed.targets
        )  # fmt: skip

    @property
    def generator_resolution(self) -> int:
        return int(self.source.shape[-1])


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

    @classmethod
    def load(cls, config: SystemConfig | None = None, device: str = "cpu") -> "EditableDeepSC":
        """Load every model of ``config`` from the zoo (sha256-checked)."""
        from editable_deepsc.channel.codec_zoo import DEFAULT_CODEC, load_codec
        from editable_deepsc.editing.builtin import build_editor, builtin_generator
        from editable_deepsc.inversion.encoder import load_encoder
        from editable_deepsc.text.parser import default_parser

        config = config or SystemConfig()
        gen = builtin_generator(config.generator)
        enc = None if config.inversion == "optimize" else load_encoder(config.encoder, generator=gen)
        editor = build_editor(config.preset, generator=gen)
        codec = load_codec(config.codec or DEFAULT_CODEC, generator=gen).eval()
        delta = None
        try:
            stats = load_delta_statistics(delta_stats_name(gen.name), gen.num_ws, gen.w_dim)
            delta = DeltaCodec(stats, config.delta_k or max(1, codec.k // 4))
        except Exception:  # noqa: BLE001 - no delta statistics: sessions send full latents every turn
            delta = None
        parser = default_parser()
        parser.bank_embeddings, parser.speller  # noqa: B018 - warm up now: model load, not per-instruction cost
        parser.encoder.encode(["warm up"])
        tx = Transmitter(gen, enc, parser, editor, codec, delta, config)
        return cls(tx, Receiver(gen, codec, delta), config)

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

    @torch.no_grad()
    def send_full(self, w: torch.Tensor, channel: ChannelConfig, rng: torch.Generator) -> Link:
        """Send a whole latent through the semantic codec; return what the receiver got."""
        t: dict[str, float] = {}
        with _timed(t, "encode"):
            x = self.tx.encode(w, channel.snr_db)
        with _timed(t, "channel"):
            snr = torch.full((x.shape[0],), float(channel.snr_db))
            y, snr_rx = transmit_symbols(x, make_channel(channel.name, channel.block_length), snr, rng)
        with _timed(t, "decode"):
            w_rx = self.rx.decode(y, snr_rx)
        return Link("full", int(x.shape[1]), float(x.abs().pow(2).mean()), w_rx, t)

    @torch.no_grad()
    def send_delta(self, delta: torch.Tensor, w_rx_prev: torch.Tensor, channel: ChannelConfig,
                   rng: torch.Generator) -> Link:
        """Send an edit delta; the receiver adds its estimate to ``w_rx_prev``."""
        if self.tx.delta is None:
            raise BadInput("this system has no delta codec (no edit-delta statistics in the zoo)")
        t: dict[str, float] = {}
        with _timed(t, "encode"):
            x = self.tx.encode_delta(delta, float(channel.snr_db))
        with _timed(t, "channel"):
            snr = torch.full((x.shape[0],), float(channel.snr_db))
            y, snr_rx = transmit_symbols(x, make_channel(channel.name, channel.block_length), snr, rng)
        with _timed(t, "decode"):
            w_rx = w_rx_prev + self.rx.decode_delta(y, snr_rx, float(channel.snr_db))
        return Link("delta", int(x.shape[1]), float(x.abs().pow(2).mean()), w_rx, t)

    def invert_image(self, image: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Align + invert: → (aligned image (1,3,R,R), w0 (1,num_ws,w_dim), seconds)."""
        t0 = time.perf_counter()
        prepared = self.tx.prepare(image)
        w0 = self.tx.invert(prepared.image, seed=seed)
        _check_finite(w0, "inverted latent")
        return prepared.image, w0, time.perf_counter() - t0

    # ------------------------------------------------------------------ one instruction
    def edit(self, image: torch.Tensor, instruction: str | ParsedInstruction, channel: ChannelConfig,
             seed: int = 0, strength: float = 1.0, record_every: int = 0,
             w0: torch.Tensor | None = None) -> EditOutcome:
        """Edit one image under one instruction and send the edited latent over ``channel``.

        Parameters
        ----------
        image : Tensor, float32, shape (1, 3, H, W) in [-1, 1]
            A generator-sized face or a larger square photo (aligned first).
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

        Raises
        ------
        UnsupportedInstruction
            The parser or the editor refuses the instruction; nothing is transmitted.
        ImageError, NoFaceFound, BadInput
        """
        timings: dict[str, float] = {}
        with _timed(timings, "parse"):
            parsed = instruction if isinstance(instruction, ParsedInstruction) else self.tx.understand(instruction)
        if not parsed.targets:
            raise UnsupportedInstruction(f"{parsed.text!r} is a session command (more/less/undo/start over); "
                                         "it needs a previous edit: use `edsc chat` or a Session", supported=[])
        with _timed(timings, "invert"):
            if w0 is None:
                source, w0, _ = self.invert_image(image, seed=seed)
            else:
                source = image
                _check_finite(w0, "latent")
        rng = make_generator(derive_seed(seed, "edit", channel.name, channel.snr_db))
        with _timed(timings, "edit"):
            res = self.tx.edit(w0, parsed, strength, channel, rng, record_every=record_every)
        _check_finite(res.w_plus, "edited latent")
        link = self.send_full(res.w_plus, channel, make_generator(derive_seed(seed, "channel", channel.snr_db)))
        timings.update(link.timings)
        with _timed(timings, "synthesise"):
            rx_image = self.rx.synthesise(link.w_rx)
        attrs = tuple(dict.fromkeys(parsed.attributes))
        with torch.no_grad():
            src_recon = self.rx.synthesise(w0)
        return EditOutcome(
            parsed=parsed, source=source, tx_image=res.images.clamp(-1, 1), rx_image=rx_image, w0=w0,
            w_edit=res.w_plus, w_rx=link.w_rx, edit=res, link=link, channel=channel, timings=timings,
            scores_before=self.measure(src_recon, attrs), scores_tx=self.measure(res.images, attrs),
            scores_rx=self.measure(rx_image, attrs), identity_tx=self.identity(res.images, source),
            identity_rx=self.identity(rx_image, source), seed=seed, system=self.config.to_json(),
        )

    def session(self, image: torch.Tensor, channel: ChannelConfig, seed: int = 0) -> "Session":
        """Start a multi-turn :class:`Session` on ``image``."""
        return Session(self, image, channel, seed=seed)


# ---------------------------------------------------------------------- sessions
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

    Notes
    -----
    Both ends keep a history of latents: the transmitter of what it meant
    (``w_tx``), the receiver of what it decoded (``w_rx``). A follow-up sends
    ``w_tx[t] − w_tx[t−1]`` through the delta codec and the receiver adds it to
    ``w_rx[t−1]``; every ``refresh_every``-th edit since the last full
    transmission sends the full latent instead. ``undo`` pops both histories.
    """

    def __init__(self, system: EditableDeepSC, image: torch.Tensor, channel: ChannelConfig, seed: int = 0):
        self.system, self.channel, self.seed = system, channel, int(seed)
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
        with _timed(timings, "parse"):
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
            with _timed(timings, "edit"):
                res = sysm.tx.edit(w_prev, parsed, strength, ch, rng, subspace=subspace)
                if subspace is not None and not bool(res.met.all()):
                    # the delta's axes cannot carry this edit: edit freely and send it in full if that works
                    free = sysm.tx.edit(w_prev, parsed, strength, ch, make_generator(self._turn_seed("edit")))
                    if bool(free.met.all()):
                        res, use_delta = free, False
            w_new, tx_img, action = res.w_plus.detach(), res.images.clamp(-1, 1), "edit"
            met = bool(res.met.all())
        _check_finite(w_new, "edited latent")
        crng = make_generator(self._turn_seed("channel"))
        if use_delta:
            link = sysm.send_delta(w_new - w_prev, self.w_rx[-1], ch, crng)
        else:
            link = sysm.send_full(w_new, ch, crng)
        timings.update(link.timings)
        with _timed(timings, "synthesise"):
            rx_img = sysm.rx.synthesise(link.w_rx)
        self.w_tx.append(w_new)
        self.w_rx.append(link.w_rx)
        self.kinds.append(link.kind)
        self.last_targets.append(tuple(parsed.targets))
        turn = self._record(text, action, link.kind, parsed, link.symbols, link.power, rx_img, tx_img, timings,
                            edit_met=met)
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
        from editable_deepsc.metrics.image import psnr, ssim

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
            "turns": [t.to_json() for t in self.turns],
            "symbols_total": sum(t.symbols for t in self.turns),
        }


__all__ = ["EditOutcome", "EditableDeepSC", "Link", "Receiver", "STAGES", "Session", "SystemConfig",
           "Transmitter", "Turn", "continue_targets"]
