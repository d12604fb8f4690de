"""Names shared across the package, importable without torch (the CLI reads its choices here).

Every literal that several modules (and the ``edsc`` options) repeat lives here once:
the channel models, the editing presets, the inversion methods and the model sets.
"""

from __future__ import annotations

#: Channel models (:func:`editable_deepsc.channel.make_channel`).
CHANNELS: tuple[str, ...] = ("awgn", "rayleigh")
#: Editing presets (:data:`editable_deepsc.editing.config.PRESETS`); ``fast`` is the default.
PRESETS: tuple[str, ...] = ("fast", "paper", "instant")
DEFAULT_PRESET = "fast"
#: Image semantic encoder modes (:func:`editable_deepsc.inversion.invert.invert`).
INVERSION_METHODS: tuple[str, ...] = ("encoder", "optimize", "hybrid")
DEFAULT_INVERSION = "encoder"
#: Corrections of a receiver-verified edit (:mod:`editable_deepsc.verify.rounds`).
CORRECTIONS: tuple[str, ...] = ("delta", "resend")
DEFAULT_CORRECTION = "delta"
#: Most correction rounds of a receiver-verified edit.
MAX_VERIFY_ROUNDS = 2
#: Fraction of the edit a delta correction of a verified edit adds per round.
DELTA_STEP = 0.5
#: Model sets shipped with the package (``editable_deepsc/zoo/sets/<name>.json``).
MODEL_SETS: tuple[str, ...] = ("faces64", "ffhq")
#: The model set used when none is named (``--models``, ``EditableDeepSC.load(models=...)``).
DEFAULT_MODEL_SET = "faces64"
#: Roles a model set can name (keys of its card's ``members``).
SET_ROLES: tuple[str, ...] = (
    "generator", "teacher", "encoder", "directions", "critic", "delta", "codecs", "deepjscc", "exits",
)  # fmt: skip
