"""The "what would the data-oriented baselines deliver" panel.

A small registry of :class:`BaselineSpec` entries names methods of
:mod:`editable_deepsc.baselines.registry`. A method that is not registered
there, whose module fails to import, or whose trained model is missing from
the zoo (:class:`~editable_deepsc.errors.CheckpointError`) is shown as *not
available* with the reason; DeepJSCC appears as soon as its model is in the zoo.

For the current turn of a session, each available baseline sends the session's
aligned source image once at its CBR over the session's channel, and its
receiver inverts and edits the received image with the same editor
(:func:`editable_deepsc.baselines.edit_at_receiver.edit_at_receiver`), applying
the session's active edits in order. Transmissions and inversions are cached
per (method, CBR, channel, SNR) for the session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from editable_deepsc.baselines.edit_at_receiver import edit_at_receiver, invert_received
from editable_deepsc.baselines.registry import TRANSMIT_METHODS, get_method, transmit_image
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput, CheckpointError, EdscError
from editable_deepsc.rng import derive_seed


@dataclass(frozen=True)
class BaselineSpec:
    """A data-oriented method shown next to Editable-DeepSC.

    Attributes
    ----------
    name : str
        Key in :data:`editable_deepsc.baselines.registry.TRANSMIT_METHODS`.
    label : str
        What the page shows.
    cbr : float
        Default channel bandwidth ratio (the page can change it).
    """

    name: str
    label: str
    cbr: float


COMPARE_BASELINES: tuple[BaselineSpec, ...] = (
    BaselineSpec("deepjscc", "DeepJSCC", 1 / 12),
    BaselineSpec("jpeg-ldpc", "JPEG + 5G LDPC", 1 / 12),
)
"""Baselines of the side-by-side panel, in display order."""


def availability(spec: BaselineSpec) -> tuple[bool, str | None]:
    """Whether ``spec``'s method can run here, and why not."""
    if spec.name not in TRANSMIT_METHODS:
        return False, f"{spec.label} is not available yet (no '{spec.name}' method in the baseline registry)"
    try:
        get_method(spec.name)
    except (ImportError, AttributeError, BadInput) as e:
        return False, f"{spec.label} cannot be loaded: {e}"
    return True, None


def _transmit(spec: BaselineSpec) -> Callable[..., Any]:
    return lambda image, **kw: transmit_image(image, spec.name, **kw)


class BaselineCache:
    """Per-session cache of baseline transmissions and inversions of what they delivered."""

    def __init__(self) -> None:
        self._links: dict[tuple, tuple[Any, tuple[torch.Tensor, torch.Tensor] | str, float]] = {}

    def link(self, system, spec: BaselineSpec, source: torch.Tensor, cbr: float, channel: ChannelConfig,
             seed: int) -> tuple[Any, tuple[torch.Tensor, torch.Tensor] | str, float]:
        """(transmission result, inverted (image, w) or why the receiver cannot invert it, seconds), cached.

        Raises
        ------
        EdscError
            The method refused the settings (e.g. a CBR too small to carry anything).
        """
        key = (spec.name, round(float(cbr), 8), channel.name, float(channel.snr_db), channel.block_length)
        if key not in self._links:
            t0 = time.perf_counter()
            tx = _transmit(spec)(source, cbr=cbr, channel=channel,
                                 seed=derive_seed(seed, "baseline", spec.name))
            try:
                inv: tuple[torch.Tensor, torch.Tensor] | str = invert_received(system, tx.image, seed=seed)
            except EdscError as e:  # e.g. no face left in a failed decoding
                inv = f"the receiver cannot edit what arrived: {e}"
            if len(self._links) >= 8:
                self._links.pop(next(iter(self._links)))
            self._links[key] = (tx, inv, time.perf_counter() - t0)
        return self._links[key]


def compare_turn(system, session, cache: BaselineCache, channel: ChannelConfig,
                 cbrs: dict[str, float] | None = None,
                 baselines: tuple[BaselineSpec, ...] = COMPARE_BASELINES) -> list[dict]:
    """What each baseline delivers for ``session``'s current state.

    Parameters
    ----------
    system : EditableDeepSC
    session : Session
        Its ``source`` is sent; its active edits (``last_targets``) are applied at the receiver.
    cache : BaselineCache
    channel : ChannelConfig
    cbrs : dict of str to float, optional
        CBR per baseline name (default: each spec's ``cbr``).
    baselines : tuple of BaselineSpec

    Returns
    -------
    list of dict
        Per baseline: ``name``, ``label``, ``available``, ``reason`` and, when
        available, ``image`` (Tensor (1, 3, R, R)), ``received`` (Tensor), ``cbr``,
        ``k``, ``decoded_ok``, ``link_seconds`` (transmission + inversion, once
        per setting), ``edit_seconds``, ``transmission`` (the method's JSON) and
        ``error``: why the method or its receiver could not deliver an edit (then
        ``image`` is what arrived unedited, or absent if nothing was sent).
    """
    out = []
    edits = list(session.last_targets)
    for spec in baselines:
        ok, reason = availability(spec)
        row: dict[str, Any] = {"name": spec.name, "label": spec.label, "available": ok, "reason": reason}
        if ok:
            cbr = float((cbrs or {}).get(spec.name, spec.cbr))
            if not (0.0 < cbr <= 1.0):
                raise BadInput(f"baseline CBR must be in (0, 1], got {cbr}")
            try:
                tx, inv, link_s = cache.link(system, spec, session.source, cbr, channel, session.seed)
            except CheckpointError as e:  # registered, but its trained model is not in the zoo (yet)
                row.update(available=False, reason=f"{spec.label} is not available: {e}")
                out.append(row)
                continue
            except EdscError as e:
                row.update(cbr=cbr, k=0, error=str(e), edits=len(edits))
                out.append(row)
                continue
            t0 = time.perf_counter()
            rec = tx.to_json()
            if isinstance(inv, str):
                image, received, error = tx.image, tx.image, inv
            else:
                image = edit_at_receiver(system, tx.image, edits, seed=session.seed, inverted=inv).image
                received, error = inv[0], None
            row.update(image=image, received=received, error=error, cbr=float(rec.get("cbr", cbr)),
                       k=int(rec.get("k", 0)), decoded_ok=rec.get("decoded_ok"), link_seconds=round(link_s, 3),
                       edit_seconds=round(time.perf_counter() - t0, 3), edits=len(edits), transmission=rec)
        out.append(row)
    return out


__all__ = ["BaselineCache", "BaselineSpec", "COMPARE_BASELINES", "availability", "compare_turn"]
