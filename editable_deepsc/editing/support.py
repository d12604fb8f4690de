"""Which edits the built-in editor performs: a measured support table, and the refusal.

``edsc bench edit-support`` edits held-out teacher test faces with every
(attribute, direction) pair and writes ``editing/supported.json``: per pair the
success rate (target met *and* face-descriptor distance to the original at most
``max_id_distance``), the mean identity, and whether it clears ``min_success``. The editor
refuses pairs that do not (:class:`~editable_deepsc.errors.UnsupportedInstruction`,
CLI exit 2, nothing transmitted), quoting the measured rate and listing what is
supported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.text.targets import EditTarget

SUPPORT_FILE = Path(__file__).resolve().parent / "supported.json"
"""The support table of the built-in model set, written by ``edsc bench edit-support --write``."""

PHRASES: dict[str, tuple[str, str]] = {
    "neutral": ("more neutral expression", "less neutral expression"),
    "happy": ("smile", "stop smiling"),
    "sad": ("look sad", "look less sad"),
    "angry": ("look angry", "look less angry"),
    "fearful": ("look afraid", "look less afraid"),
    "disgusted": ("look disgusted", "look less disgusted"),
    "surprised": ("look surprised", "look less surprised"),
    "age": ("older", "younger"),
    "gender": ("more masculine", "more feminine"),
    "yaw": ("turn the head to the right", "turn the head to the left"),
    "pitch": ("look up", "look down"),
    "mouth_open": ("open the mouth", "close the mouth"),
    "eyes_open": ("open the eyes wider", "close the eyes"),
}
"""A short phrase per (attribute, more/less), for messages."""


def edit_key(target: EditTarget) -> str:
    """``"<attribute>:<more|less|set>"``."""
    return f"{target.attribute}:{target.direction}"


def phrase(key: str) -> str:
    """Readable form of an edit key, e.g. ``"happy:more"`` → ``"smile"``."""
    attr, direction = key.split(":")
    if attr in PHRASES and direction in ("more", "less"):
        return PHRASES[attr][0 if direction == "more" else 1]
    return f"{attr} {direction}"


@dataclass
class SupportTable:
    """Measured reliability of each (attribute, direction) edit for one generator.

    Attributes
    ----------
    generator : str
        Generator the measurements belong to.
    min_success : float
        Success rate an edit needs to be supported.
    max_id_distance : float
        Largest face-descriptor distance of an edited face whose edit counts as a success.
    entries : dict of str to dict
        ``"happy:more" -> {"success", "met", "identity", "n", "supported"}``.
    meta : dict
        The measuring command, preset, seeds, date.
    """

    generator: str
    min_success: float
    max_id_distance: float
    entries: dict[str, dict]
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    def supported_keys(self) -> list[str]:
        return [k for k, e in self.entries.items() if e.get("supported")]

    def is_supported(self, target: EditTarget) -> bool:
        if target.direction == "set":
            a = target.attribute
            return all(self.entries.get(f"{a}:{d}", {}).get("supported", False) for d in ("more", "less"))
        return bool(self.entries.get(edit_key(target), {}).get("supported", False))

    def is_supported_all(self, targets) -> bool:
        """Whether every target of ``targets`` is supported."""
        return all(self.is_supported(t) for t in targets)

    def describe_supported(self) -> str:
        keys = self.supported_keys()
        if not keys:
            return "none"
        return ", ".join(f"{phrase(k)} ({k}, {100 * self.entries[k]['success']:.0f}%)" for k in keys)

    def check(self, targets: tuple[EditTarget, ...] | list[EditTarget]) -> None:
        """Raise :class:`UnsupportedInstruction` if any target is not supported.

        The message gives the measured success rate (or says the edit was not
        measured) and lists the supported edits; for a ``set`` target,
        ``nearest`` is a supported direction of the same attribute.
        """
        for t in targets:
            if self.is_supported(t):
                continue
            key = edit_key(t)
            e = self.entries.get(key)
            if e is not None:
                why = (
                    f"it succeeded on only {100 * e['success']:.0f}% of {e['n']} held-out faces "
                    f"(needs {100 * self.min_success:.0f}% with identity distance <= {self.max_id_distance:g})"
                )
            elif t.direction == "set":
                why = "setting it to a value needs both directions to be reliable"
            else:
                why = "it was not measured"
            # a "set" can fall back to a supported direction of the same attribute; more/less have no near edit
            same = [k for k in self.supported_keys() if k.split(":")[0] == t.attribute] if t.direction == "set" else []
            raise UnsupportedInstruction(
                f"the built-in editor of {self.generator} cannot reliably edit '{t.describe()}': {why}; "
                f"supported: {self.describe_supported()}",
                supported=self.supported_keys(),
                nearest=same[0] if same else None,
            )

    # ------------------------------------------------------------------ storage
    def to_json(self) -> dict:
        return {
            "generator": self.generator,
            "min_success": self.min_success,
            "max_id_distance": self.max_id_distance,
            "entries": self.entries,
            "meta": self.meta,
        }

    def save(self, path: str | Path = SUPPORT_FILE) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path = SUPPORT_FILE) -> "SupportTable":
        """Read a table written by :meth:`save`.

        Raises
        ------
        BadInput
            Missing or malformed file.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls(d["generator"], float(d["min_success"]), float(d["max_id_distance"]), d["entries"], d.get("meta", {}))
        except FileNotFoundError:
            raise BadInput(f"no support table at {path}") from None
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"malformed support table {path.name}: {e}") from None


def support_file(generator_name: str) -> Path:
    """Where the support table of ``generator_name`` ships: ``editing/supported.json`` for the faces64
    generator (its historical place), ``editing/supported-<generator>.json`` for any other."""
    legacy = SUPPORT_FILE
    if legacy.is_file() and json.loads(legacy.read_text()).get("generator") == generator_name:
        return legacy
    return SUPPORT_FILE.with_name(f"supported-{generator_name}.json")


def load_support(generator_name: str, path: str | Path | None = None) -> SupportTable | None:
    """The shipped support table if it was measured for ``generator_name``, else ``None``."""
    path = Path(path) if path is not None else support_file(generator_name)
    if not path.is_file():
        return None
    table = SupportTable.load(path)
    return table if table.generator == generator_name else None
