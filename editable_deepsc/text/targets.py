"""What an instruction asks for: the shared vocabulary of parser, guidance and editor.

An instruction such as "make her smile a bit and look 20 years older" parses to::

    ParsedInstruction(text=..., targets=[
        EditTarget("happy", "more", strength=0.5),
        EditTarget("age", "more", amount=20.0),
    ])

Attributes and their units (what :class:`~editable_deepsc.guidance.Guidance`
scores and the editor moves):

========== ============================================== =====================
attribute  meaning                                        unit of ``amount``
========== ============================================== =====================
happy ...  expression class probability (7 classes:       probability in [0, 1]
           neutral, happy, sad, angry, fearful,
           disgusted, surprised); "smile" is ``happy``
age        apparent age                                   years
gender     masculinity, P(male)                           probability in [0, 1]
yaw        head turn, positive = towards image right      degrees
pitch      head tilt, positive = looking up               degrees
mouth_open mouth openness (lip gap / mouth width)         ratio
eyes_open  eye openness (lid gap / eye width)             ratio
========== ============================================== =====================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
"""face-api's expression classes, in its output order."""

ATTRIBUTES: tuple[str, ...] = EXPRESSIONS + ("age", "gender", "yaw", "pitch", "mouth_open", "eyes_open")
"""Every attribute the parser understands (the built-in editor may support fewer)."""

OPPOSED_EXPRESSIONS: frozenset[frozenset[str]] = frozenset(
    [frozenset(("neutral", e)) for e in EXPRESSIONS if e != "neutral"]
    + [frozenset(("happy", e)) for e in ("sad", "angry", "fearful", "disgusted")]
)
"""Expression pairs one face cannot show more of at once ("smile and frown": happy and angry);
an instruction raising both is refused. Compounds such as "happy and surprised" stay allowed."""

Direction = Literal["more", "less", "set"]


def opposed(a: "EditTarget", b: "EditTarget") -> bool:
    """Whether two targets cannot both be met: one attribute pushed two ways, or two opposed
    expressions (:data:`OPPOSED_EXPRESSIONS`) both raised."""
    if a.attribute == b.attribute:
        return a.direction != b.direction
    return (a.direction == "more" and b.direction == "more"
            and frozenset((a.attribute, b.attribute)) in OPPOSED_EXPRESSIONS)


@dataclass(frozen=True)
class EditTarget:
    """One thing an instruction asks to change.

    Parameters
    ----------
    attribute : str
        One of :data:`ATTRIBUTES`.
    direction : {"more", "less", "set"}
        Increase, decrease, or set to ``amount``.
    strength : float
        Relative strength for "more"/"less" (1.0 = default edit, 0.5 = "a bit",
        1.5–2.0 = "much"/"a lot").
    amount : float or None
        An absolute change ("20 years older" → 20.0 with direction "more") or,
        for "set", the target value, in the attribute's unit.
    """

    attribute: str
    direction: Direction
    strength: float = 1.0
    amount: float | None = None

    def __post_init__(self) -> None:
        if self.attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {self.attribute!r}")
        if self.direction not in ("more", "less", "set"):
            raise ValueError(f"unknown direction {self.direction!r}")
        if self.direction == "set" and self.amount is None:
            raise ValueError("direction 'set' needs an amount")
        if not (0.0 < self.strength <= 4.0):
            raise ValueError(f"strength must be in (0, 4], got {self.strength}")

    @property
    def sign(self) -> int:
        """+1 for "more", -1 for "less", 0 for "set"."""
        return {"more": 1, "less": -1, "set": 0}[self.direction]

    def describe(self) -> str:
        """Human-readable one-liner, e.g. ``"happy: more (x0.5)"``."""
        if self.direction == "set":
            return f"{self.attribute}: set to {self.amount:g}"
        s = f"{self.attribute}: {self.direction}"
        if self.amount is not None:
            s += f" by {self.amount:g}"
        if self.strength != 1.0:
            s += f" (x{self.strength:g})"
        return s


@dataclass(frozen=True)
class FollowUp:
    """A session command instead of an edit ("more", "a bit less", "undo", "start over").

    Parameters
    ----------
    kind : {"repeat", "reverse", "undo", "reset"}
        Repeat the previous edit, go back part of the way, undo the last edit,
        or return to the original image.
    strength : float
        Relative strength for "repeat"/"reverse" ("a bit more" → 0.5).
    """

    kind: str
    strength: float = 1.0

    KINDS = ("repeat", "reverse", "undo", "reset")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown follow-up {self.kind!r}")
        if not (0.0 < self.strength <= 4.0):
            raise ValueError(f"strength must be in (0, 4], got {self.strength}")


@dataclass(frozen=True)
class ParsedInstruction:
    """The result of parsing an instruction.

    Parameters
    ----------
    text : str
        The instruction as given.
    targets : tuple of EditTarget
        What to change, in order of mention (compounds give several).
    confidence : float
        Similarity of the best prompt-bank match in [0, 1] (1.0 for exact rules).
    meta : dict
        Free-form parser details (not compared).
    followup : FollowUp or None
        Set (and ``targets`` empty) when the instruction is a session command.
    """

    text: str
    targets: tuple[EditTarget, ...]
    confidence: float = 1.0
    meta: dict = field(default_factory=dict, compare=False)
    followup: FollowUp | None = None

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(t.attribute for t in self.targets)

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "targets": [asdict(t) for t in self.targets],
            "confidence": self.confidence,
            "followup": asdict(self.followup) if self.followup else None,
        }
