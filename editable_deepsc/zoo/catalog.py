"""The model catalogue: built-in cards (``zoo/cards``) plus cards in the user cache.

User checkpoints (e.g. a rosinality StyleGAN2 ``.pt``) and converted third-party
weights are registered in the *user zoo*, a folder outside the repository:
``cache_dir()/zoo`` (:func:`editable_deepsc.paths.cache_dir`; ``$EDSC_USER_ZOO``
overrides it), with the same layout as the built-in one (``cards/<name>.json``,
``weights/<file>``). A card's ``file`` is absolute or relative to that
``weights`` folder; ``source`` names the original file and its sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from editable_deepsc.paths import zoo_cache_dir
from editable_deepsc.zoo import registry


def user_zoo_dir() -> Path:
    """Root of the user zoo (read from ``$EDSC_USER_ZOO`` / ``$EDSC_CACHE`` at call time)."""
    return zoo_cache_dir()


def user_cards_dir() -> Path:
    """Directory of the user cards."""
    return registry.cache_cards_dir()


def user_weights_dir() -> Path:
    """Directory of converted user weights."""
    return registry.cache_weights_dir()


def list_user_cards() -> list[registry.ModelCard]:
    """Cards of the user zoo, sorted by name."""
    return registry.list_cache_cards()


def all_cards() -> list[registry.ModelCard]:
    """Built-in cards followed by user cards."""
    return registry.list_cards() + list_user_cards()


def find_card(name: str) -> registry.ModelCard | None:
    """The built-in or user card named ``name`` (built-in first), or None."""
    return registry.find_card(name)


def register_user_card(c: registry.ModelCard) -> Path:
    """Write a user card (``c.file`` should be an absolute path); return the card path."""
    return registry.register_card(c, cards_dir=user_cards_dir())


@dataclass
class VerifyRow:
    """Result of checking one registered file."""

    name: str
    file: str
    ok: bool
    message: str


def verify_cards(cards: list[registry.ModelCard] | None = None) -> list[VerifyRow]:
    """Recompute the sha256 of every registered file (default: :func:`all_cards`).

    Returns
    -------
    list of VerifyRow
        ``ok`` is False for a missing file or a digest mismatch; the message
        then quotes the card's ``fix`` command when it has one.
    """
    rows = []
    for c in all_cards() if cards is None else cards:
        problem = registry.check_file(c)
        msg = "ok" if problem is None else (f"{problem}; fix: {c.fix}" if c.fix else problem)
        rows.append(VerifyRow(c.name, str(c.path), problem is None, msg))
    return rows


def file_size_mb(c: registry.ModelCard) -> float | None:
    """Size of the card's weights file in MB (10^6 bytes), None if missing."""
    return round(c.path.stat().st_size / 1e6, 2) if c.path.is_file() else None
