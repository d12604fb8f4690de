"""The transmitter: image and text semantic encoders, the semantic editing module and the channel encoder.

::

    image ──► prepare (align) ──► invert (W+) ──┐
    text  ──► understand (parse) ───────────────┴─► edit (W+) ──► encode ──► symbols

:meth:`Transmitter.load` loads its models; the
:class:`~editable_deepsc.receiver.Receiver` shares the generator and the codecs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from editable_deepsc.channel.link import check_finite
from editable_deepsc.inversion.invert import invert
from editable_deepsc.inversion.prepare import PreparedImage, prepare_image, prepare_photo
from editable_deepsc.text.parser import default_parser
from editable_deepsc.models import load_system_models
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

if TYPE_CHECKING:
    from editable_deepsc.channel.codec import SemanticCodec
    from editable_deepsc.channel.delta import DeltaCodec
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.config import SystemConfig


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
                 config: "SystemConfig"):
        self.generator, self.encoder, self.parser, self.editor = generator, encoder, parser, editor
        self.codec, self.delta, self.config = codec, delta, config

    @classmethod
    def load(cls, config: "SystemConfig") -> "Transmitter":
        """Load the transmitter's models of ``config`` from the zoo (sha256-checked; its model set fills what
        the config does not name, :func:`~editable_deepsc.models.load_system_models`); the receiver shares
        its generator, codec and delta codec."""
        m = load_system_models(config)
        parser = default_parser()
        parser.bank_embeddings, parser.speller  # noqa: B018 - warm up now: model load, not per-instruction cost
        parser.encoder.encode(["warm up"])
        return cls(m.generator, m.encoder, parser, m.editor, m.codec, m.delta, config)

    @property
    def takes_photos(self) -> bool:
        """Whether this is a full-size set whose photos are FFHQ-aligned and inverted at the work size."""
        from editable_deepsc.inversion.photo import takes_photos

        return takes_photos(self.generator)

    def prepare(self, image: torch.Tensor, face: int | None = None, check_face: bool = False):
        """Check and align one image (1, 3, H, W) in [-1, 1] → ``PreparedImage``.

        At the generator's size for ``faces64``; for a full-size set (:attr:`takes_photos`) a photo
        of any size and shape, FFHQ-aligned to the work-size crop with its
        :class:`~editable_deepsc.inversion.photo_target.PhotoTarget` kept (``align`` does not apply).
        ``check_face`` refuses an image without a face whatever its size (user input); ``face``
        picks one of several faces (0 = highest detector score).
        """
        if self.takes_photos:
            from editable_deepsc.inversion.photo import PHOTO_SIZE

            return prepare_photo(image, size=PHOTO_SIZE, face=face)
        return prepare_image(image, resolution=self.generator.resolution, align=self.config.align, face=face,
                             check_face=check_face)

    def invert(self, image: torch.Tensor | PreparedImage, seed: int = 0) -> torch.Tensor:
        """Aligned image (1, 3, R, R), or a prepared photo, → W+ latent (1, num_ws, w_dim) float32.

        A full-size set inverts against the photo (:func:`~editable_deepsc.inversion.photo.invert_photo`:
        identity to the source photo, work-size exit).
        """
        if self.takes_photos:
            from editable_deepsc.inversion.photo import invert_photo

            target = image.target if isinstance(image, PreparedImage) else None
            if target is None:
                target = self.prepare(image.image if isinstance(image, PreparedImage) else image).target
            out = invert_photo(target, self.config.inversion, generator=self.generator, encoder=self.encoder,
                               seed=seed, second=None)
            return out.w_plus.detach()
        if isinstance(image, PreparedImage):
            image = image.image
        out = invert(image, method=self.config.inversion, generator=self.generator, encoder=self.encoder,
                     seed=seed, with_stats=False)
        return out.w_plus.detach()

    @staticmethod
    @torch.no_grad()
    def identity_to_photo(photo, tx_image: torch.Tensor, rx_image: torch.Tensor, analyzer=None) -> dict:
        """Face-api descriptor distances of the transmitter's and the received image (1, 3, R, R) to the
        source photo (a ``PhotoTarget``): ``{"tx", "rx", "threshold", "threshold_source", "same_person_rx",
        "reference"}``."""
        from editable_deepsc.inversion.photo_target import PhotoIdentity, same_person_threshold

        ident = PhotoIdentity([photo], analyzer=analyzer)
        thr, src = same_person_threshold()
        tx, rx = (float(ident.distance(x)[0]) for x in (tx_image, rx_image))
        return {"tx": round(tx, 4), "rx": round(rx, 4), "threshold": thr, "threshold_source": src,
                "same_person_rx": rx <= thr, "reference": "source photo"}

    def understand(self, text: str) -> ParsedInstruction:
        """Parse an instruction (raises :class:`UnsupportedInstruction`)."""
        return self.parser.parse(text)

    def edit(self, w: torch.Tensor, instruction: ParsedInstruction | tuple[EditTarget, ...], strength: float,
             channel: ChannelConfig, rng: torch.Generator, record_every: int = 0,
             subspace: torch.Tensor | None = None, identity_reference: torch.Tensor | None = None):
        """Run the editor on ``w`` (1, num_ws, w_dim); JECC goes through the codec at ``channel``;
        ``subspace`` (num_ws·w_dim, m) confines the change to a span (follow-ups sent as deltas);
        ``identity_reference`` (1, 3, R, R): the aligned source photo the edit keeps identity against
        (full-size sets; default: the inversion's own image)."""
        through = None
        if self.config.jecc:
            through = (self.codec, channel.build(), channel.snr_db)
        return self.editor.edit(w, instruction, strength=strength, through_channel=through, rng=rng,
                                record_every=record_every, subspace=subspace, identity_reference=identity_reference)

    @torch.no_grad()
    def encode(self, w: torch.Tensor, snr_db: float) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) → (N, k) complex64 channel symbols, unit average power."""
        check_finite(w, "latent")
        return self.codec.encode(w, snr_db)

    @torch.no_grad()
    def encode_delta(self, delta: torch.Tensor, snr_db: float) -> torch.Tensor:
        """Edit delta (N, num_ws, w_dim) → (N, delta_k) complex64 symbols, shaped for nominal ``snr_db``."""
        check_finite(delta, "latent delta")
        return self.delta.encode(delta, snr_db)


__all__ = ["Transmitter"]
