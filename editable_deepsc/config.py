"""The configurations of the system: :class:`SystemConfig` (models and policies) and the channel's.

:class:`~editable_deepsc.channel.config.ChannelConfig` lives with the channels and is
re-exported here, so that both configurations are one import away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput
from editable_deepsc.vocab import DEFAULT_INVERSION, DEFAULT_MODEL_SET, DEFAULT_PRESET, INVERSION_METHODS, PRESETS
from editable_deepsc.zoo.sets import load_set


@dataclass(frozen=True)
class SystemConfig:
    """Everything that defines an Editable-DeepSC system (models and policies).

    Parameters
    ----------
    models : str
        Model set (:mod:`editable_deepsc.zoo.sets`) whose members fill every model not named here.
    generator : str or None
        Generator zoo name or path (``None``: the set's; a StyleGAN2 checkpoint, ...).
    encoder : str or None
        Inversion encoder zoo name or path (``None``: the set's).
    codec : str or None
        Semantic codec zoo name (``None``: the default codec of the set).
    inversion : {"encoder", "hybrid", "optimize"} or None
        Image semantic encoder mode (``None``: ``hybrid`` for a photo set such as ``ffhq``, whose
        encoder alone gives a generic face, else ``encoder``).
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

    generator: str | None = None
    encoder: str | None = None
    codec: str | None = None
    inversion: str | None = None
    preset: str = DEFAULT_PRESET
    jecc: bool = False
    delta_k: int | None = None
    refresh_every: int = 4
    delta_subspace: bool = True
    align: bool = True
    models: str = DEFAULT_MODEL_SET

    def __post_init__(self) -> None:
        if self.inversion is None:
            photos = load_set(self.models).face_crop.get("framing") == "ffhq"
            object.__setattr__(self, "inversion", "hybrid" if photos else DEFAULT_INVERSION)
        if self.inversion not in INVERSION_METHODS:
            raise BadInput(f"inversion must be encoder, hybrid or optimize, got {self.inversion!r}")
        if self.preset not in PRESETS:
            raise BadInput(f"preset must be fast, paper or instant, got {self.preset!r}")
        models = load_set(self.models)
        for role in ("generator", "encoder"):
            if getattr(self, role) is None:
                object.__setattr__(self, role, models.member(role))
        if int(self.refresh_every) < 1:
            raise BadInput(f"refresh_every must be >= 1, got {self.refresh_every}")
        if self.delta_k is not None and int(self.delta_k) < 1:
            raise BadInput(f"delta_k must be >= 1, got {self.delta_k}")

    def to_json(self) -> dict:
        return asdict(self)


__all__ = ["ChannelConfig", "SystemConfig"]
