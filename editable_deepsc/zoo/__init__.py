"""Model zoo: every shipped or user-supplied model registered by name with file, sha256, licence and source.

A model is described by a *card*, a small JSON file in ``zoo/cards/<name>.json``::

    {"name": "edsc-faces64", "kind": "generator", "file": "edsc-faces64.safetensors",
     "sha256": "...", "licence": "MIT", "source": "trained by `edsc train generator`",
     "resolution": 64, "description": "...", "config": {...}}

``file`` is relative to ``zoo/weights/``. Weights are safetensors only and are
verified against ``sha256`` before they are loaded. Cards in the user cache
(``cache_dir()/zoo/cards``) are found after the repository's.

:func:`load` builds any model from its name (the card's ``kind`` picks the
builder); :mod:`editable_deepsc.zoo.sets` groups the models of one family into
a *model set* (``load_set("faces64")``).
"""

from editable_deepsc.zoo.loader import load, register_builder
from editable_deepsc.zoo.registry import (
    ModelCard,
    card,
    find_card,
    list_cards,
    load_state_dict,
    publish,
    register_card,
    save_state_dict,
    sha256_file,
    verify_all,
    weights_path,
)

__all__ = [
    "ModelCard",
    "card",
    "find_card",
    "load",
    "register_builder",
    "list_cards",
    "load_state_dict",
    "publish",
    "register_card",
    "save_state_dict",
    "sha256_file",
    "verify_all",
    "weights_path",
]
