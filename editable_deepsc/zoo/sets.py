"""Model sets: one name selects a generator and every model trained for it.

A set is a card ``zoo/sets/<name>.json``::

    {"name": "faces64", "description": "...", "image_size": 64,
     "face_crop": {"framing": "teacher", ...},
     "members": {"generator": "edsc-faces64", "teacher": "teacher-dcgan64",
                 "encoder": "edsc-e4e-faces64", "directions": "edsc-faces64-directions",
                 "critic": "edsc-faces64-critic", "delta": "edsc-delta-faces64",
                 "codecs": {"32": "edsc-codec-faces64-k32", ...},
                 "deepjscc": {"1/6": "edsc-deepjscc-faces64-c16", ...},
                 "exits": null}}

Each member is a zoo name (``codecs`` keyed by ``k``, ``deepjscc`` by CBR). A
member may be absent or ``null`` (not trained for this set yet); asking for it
raises a :class:`~editable_deepsc.errors.CheckpointError` that names the set and
the member. Adding a model family = one set card + the zoo cards of its members
(+ a builder per new model kind, :func:`editable_deepsc.zoo.loader.register_builder`).

>>> from editable_deepsc.zoo.sets import load_set
>>> s = load_set("faces64")
>>> s.member("generator"), s.codec(128)
('edsc-faces64', 'edsc-codec-faces64-k128')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.vocab import DEFAULT_MODEL_SET, SET_ROLES
from editable_deepsc.zoo import registry

SETS_DIR = Path(__file__).resolve().parent / "sets"
#: ``k`` of the codec a set uses unless told otherwise (CBR 1/96 at 64x64).
DEFAULT_CODEC_K = 128


@dataclass(frozen=True)
class SetCheck:
    """One member of a set checked by :meth:`ModelSet.verify`."""

    role: str
    name: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ModelSet:
    """A named model family: generator, encoder, directions, critic, codecs, delta statistics, DeepJSCC.

    Attributes
    ----------
    name : str
    description : str
    image_size : int
        Side of the generator's images.
    face_crop : dict
        How photos are aligned and cropped for this set (``framing`` of
        :func:`editable_deepsc.guidance.faces.align.align_face`, ...).
    work_size : int or None
        Image side the editor and the direction/critic fits synthesise at (an exit of the
        generator; ``None``: ``image_size``).
    face_view : dict
        The window of the set's images the face nets read
        (:class:`~editable_deepsc.guidance.faces.view.FaceView` fields; empty: the whole image).
    members : dict
        Role → zoo name (``codecs``: ``{k: name}``, ``deepjscc``: ``{cbr: name}``);
        ``None`` for a member the set does not have yet.
    default_codec_k : int or None
        ``k`` of the codec the system uses by default (``None``: :data:`DEFAULT_CODEC_K` when the
        set has it, else the largest).
    """

    name: str
    description: str
    image_size: int
    face_crop: dict[str, Any] = field(default_factory=dict)
    face_view: dict[str, Any] = field(default_factory=dict)
    work_size: int | None = None
    members: dict[str, Any] = field(default_factory=dict)
    default_codec_k: int | None = None

    def member(self, role: str) -> Any:
        """The zoo name (or ``{key: name}`` for ``codecs``/``deepjscc``) of ``role``.

        Raises
        ------
        CheckpointError
            The set has no such member (absent or ``null``), naming set and member.
        """
        if role not in SET_ROLES:
            raise BadInput(f"unknown model-set role {role!r} (roles: {', '.join(SET_ROLES)})")
        value = self.members.get(role)
        if not value:
            raise CheckpointError(f"model set {self.name!r} has no {role} (member {role!r} is not in this set yet)")
        return value

    def has(self, role: str) -> bool:
        """Whether the set names a member for ``role``."""
        return bool(self.members.get(role))

    def codecs(self) -> dict[int, str]:
        """``{k: codec name}`` of the set's semantic codecs, by increasing ``k``."""
        return {int(k): v for k, v in sorted(self.member("codecs").items(), key=lambda kv: int(kv[0]))}

    def codec(self, k: int | None = None) -> str:
        """Zoo name of the codec with ``k`` symbols (default: the set's ``default_codec_k``, else
        :data:`DEFAULT_CODEC_K`, else the largest).

        Raises
        ------
        CheckpointError
            No codec with that ``k`` in the set.
        """
        have = self.codecs()
        if k is None:
            k = self.default_codec_k or (DEFAULT_CODEC_K if DEFAULT_CODEC_K in have else max(have))
        if int(k) not in have:
            raise CheckpointError(
                f"model set {self.name!r} has no codec with k={k} (member 'codecs' has k = {', '.join(map(str, have))})"
            )
        return have[int(k)]

    def deepjscc(self) -> dict[Fraction, str]:
        """``{CBR: DeepJSCC name}`` of the set, by decreasing CBR."""
        items = {Fraction(cbr): v for cbr, v in self.member("deepjscc").items()}
        return dict(sorted(items.items(), reverse=True))

    def names(self) -> list[tuple[str, str]]:
        """Every ``(role, zoo name)`` of the set, codecs and DeepJSCC models one row each."""
        rows: list[tuple[str, str]] = []
        for role in SET_ROLES:
            value = self.members.get(role)
            if isinstance(value, dict):
                rows += [(f"{role}[{key}]", name) for key, name in value.items()]
            elif value:
                rows.append((role, value))
        return rows

    def verify(self) -> list[SetCheck]:
        """Check that every member is registered and its weights match their sha256."""
        rows = []
        for role, name in self.names():
            c = registry.find_card(name)
            problem = "not registered" if c is None else registry.check_file(c)
            if problem and c is not None and c.fix:
                problem += f"; fix: {c.fix}"
            rows.append(SetCheck(role, name, problem is None, problem or "ok"))
        return rows

    @contextmanager
    def member_errors(self, role: str, name: str | None = None) -> Iterator[None]:
        """Re-raise a :class:`CheckpointError` of loading ``role`` (when ``name`` is the set's) naming set and member."""
        try:
            yield
        except CheckpointError as e:
            mine = self.members.get(role.split("[")[0])
            if name is not None and name != mine and not (isinstance(mine, dict) and name in mine.values()):
                raise
            raise CheckpointError(f"model set {self.name!r}: member {role} ({name or mine}) is unusable: {e}") from None

    def check(self) -> None:
        """Raise :class:`CheckpointError` naming the first member that is missing or corrupt."""
        for r in self.verify():
            if not r.ok:
                raise CheckpointError(f"model set {self.name!r}: member {r.role} ({r.name}) is unusable: {r.message}")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "image_size": self.image_size,
                "face_crop": self.face_crop, "face_view": self.face_view,
                "work_size": self.work_size, "default_codec_k": self.default_codec_k,
                "members": self.members}  # fmt: skip


def list_sets() -> list[str]:
    """Names of the model sets shipped in ``zoo/sets``, sorted."""
    return sorted(p.stem for p in SETS_DIR.glob("*.json"))


def load_set(name: str | ModelSet | None = None) -> ModelSet:
    """The model set ``name`` (default :data:`~editable_deepsc.vocab.DEFAULT_MODEL_SET`).

    Raises
    ------
    BadInput
        No set of that name.
    CheckpointError
        The set card is unreadable.
    """
    if isinstance(name, ModelSet):
        return name
    name = DEFAULT_MODEL_SET if name is None else str(name)
    p = SETS_DIR / f"{name}.json"
    if not p.is_file():
        raise BadInput(f"unknown model set {name!r} (choose from: {', '.join(list_sets())})")
    try:
        data = json.loads(p.read_text())
        return ModelSet(name=data["name"], description=data.get("description", ""),
                        image_size=int(data["image_size"]), face_crop=dict(data.get("face_crop") or {}),
                        face_view=dict(data.get("face_view") or {}),
                        work_size=None if data.get("work_size") is None else int(data["work_size"]),
                        members=dict(data.get("members") or {}),
                        default_codec_k=None if data.get("default_codec_k") is None else int(data["default_codec_k"]))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"unreadable model-set card {p.name}: {e}") from None


def set_of(model_name: str) -> str | None:
    """The name of the first shipped set that has ``model_name`` as a member, or ``None``."""
    for s in list_sets():
        if any(n == model_name for _, n in load_set(s).names()):
            return s
    return None


def generator_set(generator_name: str) -> ModelSet | None:
    """The shipped set whose generator is ``generator_name``, or ``None`` (a generator outside every set)."""
    for s in list_sets():
        ms = load_set(s)
        if ms.members.get("generator") == generator_name:
            return ms
    return None


def member_for(generator_name: str, role: str, derive: Callable[[str], str]) -> str:
    """The ``role`` model serving generator ``generator_name``.

    The member of the shipped set whose generator it is, when that set names
    one; otherwise the conventional name ``derive(generator_name)`` (user
    generators, models registered outside a set).
    """
    ms = generator_set(generator_name)
    return ms.member(role) if ms is not None and ms.has(role) else derive(generator_name)
