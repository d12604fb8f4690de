"""Score a parser on a JSONL file of instructions with expected targets.

Each line of the file is one case::

    {"category": "...", "text": "make her smile", "targets": [{"attribute": "happy", "direction": "more"}]}
    {"category": "...", "text": "a bit more", "followup": "repeat", "strength": 0.5}
    {"category": "...", "text": "add a hat", "refuse": true}

``"repeat": N`` repeats ``text`` N times (long-input cases). A case is right when
the parser returns exactly the expected targets in order (attribute, direction,
strength within 1e-6, amount within 1e-6; strength defaults to 1.0 and amount to
None), the expected follow-up, or raises
:class:`~editable_deepsc.errors.UnsupportedInstruction` for a refusal case.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from editable_deepsc.errors import BadInput, UnsupportedInstruction
from editable_deepsc.text.parser import InstructionParser
from editable_deepsc.text.targets import EditTarget, ParsedInstruction


@dataclass
class ParserReport:
    """Result of :func:`evaluate_parser`.

    Attributes
    ----------
    total, correct : int
        Cases and exactly-right cases.
    per_category : dict
        category → [correct, total].
    failures : list of dict
        ``{"category", "text", "expected", "got"}`` per wrong case.
    """

    total: int = 0
    correct: int = 0
    per_category: dict[str, list[int]] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Fraction of exactly-right cases in [0, 1]."""
        return self.correct / self.total if self.total else 0.0

    def to_json(self) -> dict:
        return {"total": self.total, "correct": self.correct, "accuracy": round(self.accuracy, 4),
                "per_category": self.per_category, "failures": self.failures}


def load_cases(path: str | Path) -> list[dict]:
    """Read the JSONL test set (one dict per case; ``repeat`` expanded into ``text``)."""
    cases = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise BadInput(f"cannot read instruction set {path}: {e.strerror}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{n}: not JSON ({e.msg})") from e
        if "repeat" in case:
            case = dict(case, text=case["text"] * int(case["repeat"]))
        cases.append(case)
    return cases


def expected_of(case: dict) -> object:
    """The comparable expectation of a case: ``"refuse"``, ``("followup", kind, strength)`` or targets."""
    if case.get("refuse"):
        return "refuse"
    if "followup" in case:
        return ("followup", case["followup"], round(float(case.get("strength", 1.0)), 6))
    return tuple(_key(EditTarget(**t)) for t in case["targets"])


def got_of(parsed: ParsedInstruction) -> object:
    """The comparable form of a parse result (see :func:`expected_of`)."""
    if parsed.followup is not None:
        return ("followup", parsed.followup.kind, round(parsed.followup.strength, 6))
    return tuple(_key(t) for t in parsed.targets)


def _key(t: EditTarget) -> tuple:
    return (t.attribute, t.direction, round(t.strength, 6), None if t.amount is None else round(t.amount, 6))


def evaluate_parser(path: str | Path, parser: InstructionParser) -> ParserReport:
    """Run ``parser`` on every case of ``path`` and count exact matches.

    Parameters
    ----------
    path : str or Path
        JSONL file (format in the module docstring).
    parser : InstructionParser
        The parser to score.

    Returns
    -------
    ParserReport
    """
    report = ParserReport()
    per_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cases = load_cases(path)
    results = parser.parse_many([c["text"] for c in cases])
    for case, result in zip(cases, results):
        want = expected_of(case)
        reason = None
        if isinstance(result, UnsupportedInstruction):
            got: object = "refuse"
            reason = str(result)
        else:
            got = got_of(result)
        cat = case.get("category", "")
        per_cat[cat][1] += 1
        report.total += 1
        if got == want:
            per_cat[cat][0] += 1
            report.correct += 1
        else:
            text = case["text"] if len(case["text"]) <= 80 else case["text"][:77] + "..."
            report.failures.append({"category": cat, "text": text, "expected": _jsonable(want),
                                    "got": _jsonable(got), **({"reason": reason} if reason else {})})
    report.per_category = dict(per_cat)
    return report


def _jsonable(x: object) -> object:
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    return x
