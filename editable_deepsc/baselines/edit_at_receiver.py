"""Data-oriented receivers that edit: invert the received image and edit it with the system's editor.

A data-oriented system (DeepJSCC, JPEG + LDPC) delivers an *image*; to meet an
instruction, its receiver must invert that image into the generator's W+ space
and run the same semantic editor that Editable-DeepSC runs at its transmitter.
This module does exactly that, so that side-by-side comparisons (the web demo's
baseline panel, the evaluation tables) give every method the same editor:

* :func:`edit_at_receiver` — received image → inverted latent → the edits of a
  conversation applied one after another (no channel in the loop: the receiver
  edits locally) → edited image.
* :func:`deliver_and_edit` — the whole data-oriented chain for one method of
  :mod:`editable_deepsc.baselines.registry`: send the source image at a CBR over
  a channel, then :func:`edit_at_receiver`.

The image crosses the channel once; follow-up instructions are applied at the
receiver and cost no image transmission (the text itself is not counted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from editable_deepsc.baselines.registry import transmit_image
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

Instruction = ParsedInstruction | EditTarget | Sequence[EditTarget]
"""One edit: a parsed instruction, one target or several targets edited together."""


@dataclass
class ReceiverEdit:
    """What a data-oriented receiver shows after inverting and editing.

    Attributes
    ----------
    image : Tensor, float32, shape (1, 3, R, R), in [-1, 1]
        The edited image (``G(w_edit)``), R = the generator's resolution.
    received : Tensor, float32, shape (1, 3, R, R)
        The received image as the inversion saw it (aligned / resized).
    w_received : Tensor, float32, shape (1, num_ws, w_dim)
        Inverted latent of the received image.
    w_edit : Tensor, float32, shape (1, num_ws, w_dim)
        Latent after every edit.
    steps : list of int
        Editor steps taken per instruction.
    timings : dict of str to float
        ``invert`` and ``edit`` seconds.
    """

    image: torch.Tensor
    received: torch.Tensor
    w_received: torch.Tensor
    w_edit: torch.Tensor
    steps: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class DeliveredEdit:
    """One data-oriented method end to end (:func:`deliver_and_edit`).

    Attributes
    ----------
    method : str
        Registry name (``"jpeg-ldpc"``, ``"deepjscc"``, ...).
    transmission : Any
        The method's result object (``.image``, ``.to_json()`` with ``cbr``, ``k``, ...).
    edit : ReceiverEdit
    """

    method: str
    transmission: Any
    edit: ReceiverEdit

    @property
    def image(self) -> torch.Tensor:
        """The edited image the receiver shows, (1, 3, R, R) in [-1, 1]."""
        return self.edit.image

    def to_json(self) -> dict:
        """The transmission record plus the receiver-side edit timings (no tensors)."""
        d = dict(self.transmission.to_json())
        d["method"] = self.method
        d["receiver_edit"] = {"steps": list(self.edit.steps),
                              "timings": {k: round(v, 4) for k, v in self.edit.timings.items()}}
        return d


def _as_instruction(x: Instruction) -> ParsedInstruction | EditTarget | tuple[EditTarget, ...]:
    if isinstance(x, (ParsedInstruction, EditTarget)):
        return x
    targets = tuple(x)
    if not targets or not all(isinstance(t, EditTarget) for t in targets):
        raise BadInput("each instruction must be a ParsedInstruction, an EditTarget or a non-empty "
                       "sequence of EditTarget")
    return targets


def invert_received(system, received: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Align/resize and invert a received image with the system's image semantic encoder.

    Parameters
    ----------
    system : EditableDeepSC
    received : Tensor, float32, shape (1, 3, H, W), in [-1, 1]
    seed : int

    Returns
    -------
    image : Tensor, float32, shape (1, 3, R, R)
        What the inversion saw.
    w : Tensor, float32, shape (1, num_ws, w_dim)
    """
    prepared = system.tx.prepare(received)
    w = system.tx.invert(prepared.image, seed=seed)
    if not torch.isfinite(w).all():
        raise BadInput("the inverted latent of the received image contains NaN or inf")
    return prepared.image, w


def edit_at_receiver(system, received: torch.Tensor, instructions: Sequence[Instruction], strength: float = 1.0,
                     seed: int = 0, inverted: tuple[torch.Tensor, torch.Tensor] | None = None) -> ReceiverEdit:
    """Invert ``received`` and apply ``instructions`` in order with ``system``'s editor.

    Parameters
    ----------
    system : EditableDeepSC
        Its ``tx.prepare``/``tx.invert`` invert the image and ``tx.editor`` edits it
        (without a channel in the loop, even for a JECC system: the receiver edits locally).
    received : Tensor, float32, shape (1, 3, H, W), in [-1, 1]
        What the data-oriented link delivered.
    instructions : sequence of ParsedInstruction / EditTarget / sequence of EditTarget
        The conversation's active edits, oldest first (may be empty: inversion only).
    strength : float
        Multiplies every target's strength.
    seed : int
        Seeds inversion and each edit (``derive_seed(seed, "receiver-edit", i)``).
    inverted : (image, w), optional
        A cached :func:`invert_received` result for ``received`` (skips inversion).

    Returns
    -------
    ReceiverEdit
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image, w0 = inverted if inverted is not None else invert_received(system, received, seed=seed)
    timings["invert"] = 0.0 if inverted is not None else time.perf_counter() - t0
    w = w0
    steps: list[int] = []
    t0 = time.perf_counter()
    for i, instr in enumerate(instructions):
        res = system.tx.editor.edit(w, _as_instruction(instr), strength=strength,
                                    rng=make_generator(derive_seed(seed, "receiver-edit", i)))
        w = res.w_plus.detach()
        steps.append(int(res.steps.max()))
    timings["edit"] = time.perf_counter() - t0
    with torch.no_grad():
        out = system.rx.synthesise(w)
    return ReceiverEdit(image=out, received=image, w_received=w0, w_edit=w, steps=steps, timings=timings)


def deliver_and_edit(system, source: torch.Tensor, method: str, cbr: float, channel: ChannelConfig,
                     instructions: Sequence[Instruction], strength: float = 1.0, seed: int = 0,
                     **options: Any) -> DeliveredEdit:
    """Send ``source`` with a data-oriented ``method``, then invert and edit it at the receiver.

    Parameters
    ----------
    system : EditableDeepSC
    source : Tensor, float32, shape (1, 3, R, R), in [-1, 1]
        The image the transmitter holds (for a fair comparison: the same aligned
        source the semantic system inverted).
    method : str
        A name in :data:`editable_deepsc.baselines.registry.TRANSMIT_METHODS`.
    cbr : float
        The method's channel bandwidth ratio.
    channel : ChannelConfig
    instructions : sequence
        As in :func:`edit_at_receiver`.
    strength, seed : see :func:`edit_at_receiver`
    **options
        Extra options of the method (dropped where it does not take them).

    Raises
    ------
    BadInput
        Unknown method, bad CBR.
    """
    tx = transmit_image(source, method, cbr=cbr, channel=channel,
                        seed=derive_seed(seed, "baseline", method), **options)
    edit = edit_at_receiver(system, tx.image, instructions, strength=strength, seed=seed)
    return DeliveredEdit(method=method, transmission=tx, edit=edit)


__all__ = ["DeliveredEdit", "Instruction", "ReceiverEdit", "deliver_and_edit", "edit_at_receiver",
           "invert_received"]
