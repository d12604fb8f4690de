"""Where the package keeps files outside the repository.

:func:`cache_dir` is the one user cache folder: the text-bank embeddings, and
converted third-party weights registered as zoo cards under
``cache_dir()/zoo/cards/<name>.json`` + ``cache_dir()/zoo/weights/<file>``.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "editable_deepsc"


def cache_dir() -> Path:
    """The user cache folder: ``$EDSC_CACHE`` or the platform's user cache folder (read at call time).

    Returns
    -------
    Path
        Not created here; writers create what they need below it.
    """
    env = os.environ.get("EDSC_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME))


def zoo_cache_dir() -> Path:
    """Root of the cached zoo (cards + weights outside the repository).

    ``$EDSC_USER_ZOO`` when set (kept for existing set-ups), else ``cache_dir()/zoo``.
    """
    env = os.environ.get("EDSC_USER_ZOO")
    return Path(env).expanduser() if env else cache_dir() / "zoo"
