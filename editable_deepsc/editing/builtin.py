"""The editor of a model set: its generator + face-api guidance + its directions, critic and support table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from editable_deepsc.editing.config import EditConfig, edit_config
from editable_deepsc.editing.directions import load_directions
from editable_deepsc.editing.editor import Editor
from editable_deepsc.editing.face_guidance import FaceNetGuidance
from editable_deepsc.editing.support import load_support
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.zoo.sets import load_set

if TYPE_CHECKING:
    from editable_deepsc.generator.base import StyleGenerator

BUILTIN_MAX_ID_LOSS = 0.05
"""Identity stop criterion of the built-in editor (``1 − cos`` of face-api descriptors ≈ distance 0.42)."""


def build_editor(
    preset: str | EditConfig = "fast",
    generator: StyleGenerator | None = None,
    guidance: FaceNetGuidance | None = None,
    use_support: bool = True,
    use_directions: bool = True,
    critic=None,
    **overrides,
) -> Editor:
    """An :class:`Editor` over the built-in models.

    Parameters
    ----------
    preset : str or EditConfig
        ``"paper"``, ``"fast"`` or ``"instant"`` (or a config).
    generator : StyleGenerator, optional
        Default: the generator of the default model set (:func:`~editable_deepsc.generator.load_generator`).
        The editor works at the generator's set's work size (the ``ffhq`` set: its 256 px exit,
        :func:`~editable_deepsc.generator.exit_view.work_generator`); the receiver renders full size.
    guidance : FaceNetGuidance, optional
        Shared face-net guidance (also the identity loss); default: one reading the set's face
        view (:func:`~editable_deepsc.guidance.faces.view.view_for_generator`).
    use_support : bool
        Refuse edits the shipped support table marks unreliable for this generator.
    use_directions : bool
        Load the generator's registered directions (needed by the fast and instant presets).
    critic : LatentCritic, optional
        Latent critic for the instant preset (default: the generator's registered one).
    **overrides
        :class:`EditConfig` fields to change.
    """
    from editable_deepsc.generator.exit_view import work_generator
    from editable_deepsc.guidance.faces.view import view_for_generator

    gen = work_generator(generator if generator is not None else load_generator(load_set().member("generator")))
    gd = guidance if guidance is not None else FaceNetGuidance(view=view_for_generator(gen.name))
    overrides.setdefault("max_id_loss", BUILTIN_MAX_ID_LOSS)
    cfg = edit_config(preset, **overrides)
    name = getattr(gen, "name", "unnamed")
    directions = load_directions(name) if use_directions else None
    support = load_support(name) if use_support else None
    if cfg.init == "critic" and critic is None:
        from editable_deepsc.editing.critic import find_critic

        critic = find_critic(name)
    return Editor(gen, gd, identity=gd.identity_loss, config=cfg, directions=directions, support=support,
                  identity_distance=gd.identity_distance, critic=critic)
