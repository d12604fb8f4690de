"""In-memory store of web sessions, keyed by random ids, with limits.

Each :class:`WebSession` wraps one :class:`~editable_deepsc.session.Session`
(the conversation), the image it started from, and the PNG bytes of every
image the page may download. Nothing here touches the file system except
deleting the session's own upload when it is dropped.
"""

from __future__ import annotations

import io
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput, EdscError
from editable_deepsc.imaging.io import to_pil

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class SessionNotFound(EdscError):
    """No session with that id (never existed, expired or evicted)."""


class TooManyTurns(BadInput):
    """A session reached its turn limit."""


@dataclass(frozen=True)
class SessionLimits:
    """Limits of the session store.

    Attributes
    ----------
    max_sessions : int
        Sessions kept at once; the least recently used one is dropped for a new one.
    idle_seconds : float
        Sessions unused this long are dropped.
    max_turns : int
        Turns (edits + undos) per session.
    max_per_client : int
        Sessions one client address may hold; its own least recently used one makes room for its
        next, so one client (or a page that a user visits) cannot push everybody else's out.
    """

    max_sessions: int = 16
    idle_seconds: float = 3600.0
    max_turns: int = 64
    max_per_client: int = 4

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.max_turns < 1 or self.max_per_client < 1 or not self.idle_seconds > 0:
            raise BadInput("session limits must be positive")


def png_bytes(image: torch.Tensor) -> bytes:
    """Encode one image (1, 3, H, W) or (3, H, W) float32 in [-1, 1] as PNG bytes."""
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class WebSession:
    """One browser conversation.

    Attributes
    ----------
    id : str
    session : Session
    image : Tensor, float32, (1, 3, H, W)
        The image the conversation started from (before alignment), for reset.
    origin : str
        ``"sample:<name>"`` or ``"upload:<sanitised name>"``.
    notes : list of str
        What was done to the upload (crop, downscale).
    upload_path : Path or None
        Where the upload was written (inside the app's temp folder).
    images : dict of str to bytes
        PNGs by name: ``source``, ``start``, ``turn-<i>``, ``baseline-<name>``.
    baselines : BaselineCache
    client : str
        The client's address (the per-client cap counts by it).
    face : dict or None
        Which face of the upload is used and how many were found.
    """

    id: str
    session: Any
    image: torch.Tensor
    origin: str
    notes: list[str] = field(default_factory=list)
    upload_path: Path | None = None
    images: dict[str, bytes] = field(default_factory=dict)
    baselines: Any = None
    client: str = ""
    face: dict | None = None
    last_used: float = field(default_factory=time.monotonic)

    def put_image(self, name: str, image: torch.Tensor) -> str:
        """Store ``image`` as PNG under ``name``; return its URL path."""
        self.images[name] = png_bytes(image)
        return f"/api/sessions/{self.id}/images/{name}.png"

    def drop_files(self) -> None:
        if self.upload_path is not None:
            self.upload_path.unlink(missing_ok=True)


class SessionStore:
    """Thread-safe id → :class:`WebSession` map with LRU eviction and idle expiry.

    Parameters
    ----------
    limits : SessionLimits
    """

    def __init__(self, limits: SessionLimits | None = None):
        self.limits = limits or SessionLimits()
        self._items: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        """A random, URL-safe id (128 bits)."""
        return secrets.token_urlsafe(16)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self, now: float) -> list[WebSession]:
        gone = [k for k, v in self._items.items() if now - v.last_used > self.limits.idle_seconds]
        return [self._items.pop(k) for k in gone]

    def add(self, ws: WebSession) -> None:
        """Keep ``ws``, dropping expired sessions, the client's own least recently used one when it
        holds :attr:`SessionLimits.max_per_client`, and, if still full, the least recently used one."""
        with self._lock:
            dropped = self._expire(time.monotonic())
            while True:
                own = [v for v in self._items.values() if v.client == ws.client]
                if len(own) < self.limits.max_per_client:
                    break
                dropped.append(self._items.pop(min(own, key=lambda v: v.last_used).id))
            while len(self._items) >= self.limits.max_sessions:
                oldest = min(self._items.values(), key=lambda v: v.last_used)
                dropped.append(self._items.pop(oldest.id))
            self._items[ws.id] = ws
        for d in dropped:
            d.drop_files()

    def get(self, sid: str) -> WebSession:
        """The session ``sid`` (refreshing its idle timer).

        Raises
        ------
        SessionNotFound
        """
        if not isinstance(sid, str) or not _ID.match(sid):
            raise SessionNotFound("no such session (malformed id)")
        with self._lock:
            dropped = self._expire(time.monotonic())
            ws = self._items.get(sid)
            if ws is not None:
                ws.last_used = time.monotonic()
        for d in dropped:
            d.drop_files()
        if ws is None:
            raise SessionNotFound("no such session (it may have expired: start again)")
        return ws

    def remove(self, sid: str) -> None:
        with self._lock:
            ws = self._items.pop(sid, None)
        if ws is not None:
            ws.drop_files()

    def clear(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for ws in items:
            ws.drop_files()


__all__ = ["SessionLimits", "SessionNotFound", "SessionStore", "TooManyTurns", "WebSession", "png_bytes"]
