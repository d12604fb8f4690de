"""The models of one model set, loaded for the system: generator, encoder, editor, codec, delta codec.

:func:`load_system_models` turns a :class:`~editable_deepsc.system.SystemConfig`
into loaded modules: what the config names explicitly wins, everything else
comes from its model set (:mod:`editable_deepsc.zoo.sets`). A failure to load a
member of the set is reported with the set and the member named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from editable_deepsc.channel.codec_zoo import load_codec
from editable_deepsc.channel.delta import DeltaCodec, delta_stats_name, load_delta_statistics
from editable_deepsc.editing.builtin import build_editor
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.inversion.encoder import load_encoder
from editable_deepsc.zoo.sets import load_set, member_for

if TYPE_CHECKING:
    from editable_deepsc.config import SystemConfig


@dataclass
class SystemModels:
    """Loaded models of a system (all frozen, eval mode).

    Attributes
    ----------
    generator : StyleGenerator
    encoder : E4EEncoder or None
        ``None`` with ``inversion="optimize"``.
    editor : Editor
    codec : SemanticCodec
    delta : DeltaCodec or None
        ``None`` when the generator has no delta statistics (sessions then send full latents).
    """

    generator: Any
    encoder: Any
    editor: Any
    codec: Any
    delta: DeltaCodec | None


def load_system_models(config: "SystemConfig") -> SystemModels:
    """Load the models of ``config`` (sha256-checked) from its model set and explicit names.

    Raises
    ------
    CheckpointError
        A model is unknown, missing or corrupt; a member of the set is named as such.
    """
    model_set = load_set(config.models)
    with model_set.member_errors("generator", config.generator):
        gen = load_generator(config.generator)
    with model_set.member_errors("encoder", config.encoder):
        enc = None if config.inversion == "optimize" else load_encoder(config.encoder, generator=gen)
    editor = build_editor(config.preset, generator=gen)
    codec_name = config.codec or model_set.codec()
    with model_set.member_errors("codecs", codec_name):
        codec = load_codec(codec_name, generator=gen).eval()
    try:
        stats = load_delta_statistics(member_for(gen.name, "delta", delta_stats_name), gen.num_ws, gen.w_dim)
        delta = DeltaCodec(stats, config.delta_k or max(1, codec.k // 4))
    except Exception:  # noqa: BLE001 - no delta statistics: sessions send full latents every turn
        delta = None
    return SystemModels(gen, enc, editor, codec, delta)
