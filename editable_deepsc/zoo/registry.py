"""Name → file, sha256, licence registry of model weights (safetensors only)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from editable_deepsc.errors import CheckpointError

ZOO_DIR = Path(__file__).resolve().parent
CARDS_DIR = ZOO_DIR / "cards"
WEIGHTS_DIR = ZOO_DIR / "weights"


@dataclass
class ModelCard:
    """Description of one registered model.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"edsc-faces64"``.
    kind : str
        What it is: ``generator``, ``encoder``, ``face-net``, ``codec``, ``deepjscc``, ...
    file : str
        Weights file name inside ``zoo/weights`` (or an absolute path for user models).
    sha256 : str
        Hex digest of ``file``.
    licence : str
        Licence of the weights (full text beside the weights where required).
    source : str
        Where the weights come from (training command, converted package + its sha256).
    resolution : int or None
        Image resolution the model works at, if any.
    description : str
        One line for ``edsc zoo list``.
    config : dict
        Constructor arguments needed to rebuild the module.
    """

    name: str
    kind: str
    file: str
    sha256: str
    licence: str
    source: str
    resolution: int | None = None
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        p = Path(self.file)
        return p if p.is_absolute() else WEIGHTS_DIR / p

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def list_cards() -> list[ModelCard]:
    """All registered model cards, sorted by name."""
    cards = []
    for p in sorted(CARDS_DIR.glob("*.json")):
        cards.append(ModelCard(**json.loads(p.read_text())))
    return cards


def card(name: str) -> ModelCard:
    """Return the card registered under ``name``.

    Raises
    ------
    CheckpointError
        If no model of that name is registered.
    """
    p = CARDS_DIR / f"{name}.json"
    if not p.is_file():
        known = ", ".join(c.name for c in list_cards()) or "none"
        raise CheckpointError(f"unknown model {name!r} (registered: {known})")
    return ModelCard(**json.loads(p.read_text()))


def weights_path(name: str) -> Path:
    """Path of the weights file of model ``name``."""
    return card(name).path


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_state_dict(
    state: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> str:
    """Write ``state`` as safetensors (atomically) and return its sha256."""
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    _atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata or {}))
    return sha256_file(path)


def register_card(c: ModelCard, cards_dir: Path = CARDS_DIR) -> Path:
    """Write ``c`` as ``<cards_dir>/<name>.json`` (used by training/conversion scripts)."""
    p = Path(cards_dir) / f"{c.name}.json"
    _atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(c.to_json(), indent=2) + "\n"))
    return p


def publish(
    name: str,
    state: dict[str, torch.Tensor],
    *,
    kind: str,
    licence: str,
    source: str,
    resolution: int | None = None,
    description: str = "",
    config: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    weights_dir: str | os.PathLike | None = None,
    cards_dir: str | os.PathLike | None = None,
    absolute_file: bool = False,
) -> Path:
    """Save ``state`` as ``<weights_dir>/<name>.safetensors`` and register its card.

    One step for every exporter: :func:`save_state_dict` (atomic write, sha256)
    followed by :func:`register_card` with a :class:`ModelCard` built from the
    keyword fields.

    Parameters
    ----------
    name : str
        Registry name; also the stem of the weights file and of the card.
    state : dict of str to torch.Tensor
        Tensors to store (written contiguous, on the CPU, dtypes unchanged).
    kind, licence, source, resolution, description, config
        The card fields of the same names (see :class:`ModelCard`).
    metadata : dict of str to str, optional
        Safetensors header metadata (format tag, JSON config, ...).
    weights_dir : path-like, optional
        Folder of the weights (default: the zoo's ``weights``).
    cards_dir : path-like, optional
        Folder of the card. Default: the zoo's ``cards`` when the weights go to
        the zoo, else the ``cards`` folder beside ``weights_dir``.
    absolute_file : bool
        Record the weights' absolute path as the card's ``file`` instead of its
        bare name (for weights outside the zoo's folder).

    Returns
    -------
    Path
        The safetensors file written.
    """
    wdir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    if cards_dir is None:
        cards_dir = CARDS_DIR if wdir == WEIGHTS_DIR else wdir.parent / "cards"
    dst = wdir / f"{name}.safetensors"
    digest = save_state_dict(state, dst, metadata=metadata)
    register_card(
        ModelCard(
            name=name,
            kind=kind,
            file=str(dst.resolve()) if absolute_file else dst.name,
            sha256=digest,
            licence=licence,
            source=source,
            resolution=resolution,
            description=description,
            config=dict(config or {}),
        ),
        cards_dir=Path(cards_dir),
    )
    return dst


def load_state_dict(
    name_or_path: str | os.PathLike, sha256: str | None = None, verify: bool = True
) -> dict[str, torch.Tensor]:
    """Load a safetensors state dict by registry name or by path, checking its sha256.

    Parameters
    ----------
    name_or_path : str or path-like
        A registered model name, or a path to a ``.safetensors`` file.
    sha256 : str, optional
        Expected digest when loading by path.
    verify : bool
        Check the digest (default ``True``).

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    CheckpointError
        Missing file, digest mismatch, or a file that is not valid safetensors.
    """
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        c = card(str(name_or_path))
        p, sha256 = c.path, c.sha256
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if verify and sha256:
        got = sha256_file(p)
        if got != sha256:
            raise CheckpointError(f"sha256 mismatch for {p.name}: expected {sha256[:12]}…, got {got[:12]}…")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"corrupt checkpoint {p.name}: {e}") from None


def load_tagged(
    name_or_path: str | os.PathLike, fmt: str, what: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file whose header metadata carries ``format = fmt`` (directions, critics, ...).

    Parameters
    ----------
    name_or_path : str or path-like
        A registered name (sha256-checked) or a path.
    fmt : str
        Expected ``format`` tag.
    what : str
        What the file should be, for the error message (e.g. ``"an attribute-directions file"``).

    Returns
    -------
    (dict of str to Tensor, dict of str to str)
        The tensors and the header metadata.

    Raises
    ------
    CheckpointError
        Missing or corrupt file, digest mismatch, unreadable metadata, or another format.
    """
    from safetensors import safe_open

    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = card(str(name_or_path)).path
    state = load_state_dict(name_or_path)
    try:
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot read metadata of {p.name}: {e}") from None
    if md.get("format") != fmt:
        raise CheckpointError(f"{p.name} is not {what}")
    return state, md


def verify_all() -> list[tuple[str, bool, str]]:
    """Check every registered file; return ``(name, ok, message)`` rows."""
    rows = []
    for c in list_cards():
        if not c.path.is_file():
            rows.append((c.name, False, "file missing"))
            continue
        got = sha256_file(c.path)
        rows.append((c.name, got == c.sha256, "ok" if got == c.sha256 else f"sha256 {got[:12]}… != {c.sha256[:12]}…"))
    return rows
