"""Where an edit starts: one strategy per :attr:`EditConfig.init <editable_deepsc.editing.config.EditConfig>`.

* ``"w0"`` (:mod:`.origin`): the original latent;
* ``"direction"`` (:mod:`.direction`): a jump along the attribute directions,
  sized from the face nets' reading of ``G(w0)`` and corrected by a few secant steps;
* ``"critic"`` (:mod:`.critic`): the jump sized from the latent critic's reading,
  then Adam against the critic (no face net).

Each is a function ``start(problem) -> Start``; the editor then runs the shared
refinement loop (:func:`~editable_deepsc.editing.refine.refine`) from it, unless
the start is :attr:`Start.final`.
"""

from __future__ import annotations

from collections.abc import Callable

from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.starts.base import Start
from editable_deepsc.editing.starts.critic import start_from_critic
from editable_deepsc.editing.starts.direction import start_from_directions
from editable_deepsc.editing.starts.origin import start_from_origin

StartStrategy = Callable[[EditProblem], Start]

STRATEGIES: dict[str, StartStrategy] = {
    "w0": start_from_origin,
    "direction": start_from_directions,
    "critic": start_from_critic,
}
"""The start strategy of each ``EditConfig.init``."""

__all__ = ["STRATEGIES", "Start", "StartStrategy", "start_from_critic", "start_from_directions", "start_from_origin"]
