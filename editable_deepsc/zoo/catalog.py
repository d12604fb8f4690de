"""The model catalogue: built-in cards (``zoo/cards``) plus user checkpoints registered by path.

User checkpoints (e.g. a rosinality StyleGAN2 ``.pt``) are converted to
safetensors on first use and registered in the *user zoo*, a directory outside
the repository: ``$EDSC_USER_ZOO`` or ``~/.cache/editable_deepsc/zoo``, with the
same layout as the built-in one (``cards/<name>.json``, ``weights/<file>``).
Their cards carry the absolute path of the converted file and, in ``source``,
the original path and its sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from editable_deepsc.zoo import registry


def user_zoo_dir() -> Path:
    """Root of the user zoo (read from ``$EDSC_USER_ZOO`` at call time)."""
    env = os.environ.get("EDSC_USER_ZOO")
    return Path(env) if env else Path.home() / ".cache" / "editable_deepsc" / "zoo"


def user_cards_dir() -> Path:
    """Directory of the user cards."""
    return user_zoo_dir() / "cards"


def user_weights_dir() -> Path:
    """Directory of converted user weights."""
    return user_zoo_dir() / "weights"


def list_user_cards() -> list[registry.ModelCard]:
    """Cards of user checkpoints registered by path, sorted by name."""
    d = user_cards_dir()
    return [registry.ModelCard(**json.loads(p.read_text())) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


def all_cards() -> list[registry.ModelCard]:
    """Built-in cards followed by user cards."""
    return registry.list_cards() + list_user_cards()


def find_card(name: str) -> registry.ModelCard | None:
    """The built-in or user card named ``name``, or None."""
    for c in all_cards():
        if c.name == name:
            return c
    return None


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
        ``ok`` is False for a missing file or a digest mismatch.
    """
    rows = []
    for c in all_cards() if cards is None else cards:
        p = c.path
        if not p.is_file():
            rows.append(VerifyRow(c.name, str(p), False, "file missing"))
            continue
        got = registry.sha256_file(p)
        ok = got == c.sha256
        rows.append(VerifyRow(c.name, str(p), ok, "ok" if ok else f"sha256 {got[:12]}… != registered {c.sha256[:12]}…"))
    return rows


def file_size_mb(c: registry.ModelCard) -> float | None:
    """Size of the card's weights file in MB (10^6 bytes), None if missing."""
    return round(c.path.stat().st_size / 1e6, 2) if c.path.is_file() else None
