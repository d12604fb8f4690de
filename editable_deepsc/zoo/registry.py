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
from editable_deepsc.paths import zoo_cache_dir

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
    fix : str or None
        The one command that repairs a missing or corrupt file (quoted in errors).
    home : Path or None
        Folder a relative ``file`` is found in (not stored: the zoo's ``weights``,
        or ``cache_dir()/zoo/weights`` for a cache card).
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
    fix: str | None = None
    home: Path | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> Path:
        p = Path(self.file)
        return p if p.is_absolute() else (self.home or WEIGHTS_DIR) / p

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("home")
        if out["fix"] is None:
            out.pop("fix")
        return out

    def problem(self, message: str) -> CheckpointError:
        """A :class:`CheckpointError` about this model, quoting its ``fix`` command when it has one."""
        return CheckpointError(f"{message}; fix: {self.fix}" if self.fix else message)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_cards_dir() -> Path:
    """Cards registered outside the repository: ``cache_dir()/zoo/cards`` (see :mod:`editable_deepsc.paths`)."""
    return zoo_cache_dir() / "cards"


def cache_weights_dir() -> Path:
    """Weights of the cache cards: ``cache_dir()/zoo/weights``."""
    return zoo_cache_dir() / "weights"


def read_card(path: Path, home: Path | None = None) -> ModelCard:
    """Parse one card file; a relative ``file`` is resolved against ``home`` (default: the zoo's weights)."""
    try:
        return ModelCard(**json.loads(Path(path).read_text()), home=home)
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"unreadable model card {Path(path).name}: {e}") from None


def list_cards() -> list[ModelCard]:
    """All model cards in the repository (``zoo/cards``), sorted by name."""
    return [read_card(p) for p in sorted(CARDS_DIR.glob("*.json"))]


def list_cache_cards() -> list[ModelCard]:
    """Cards in the user cache (``cache_dir()/zoo/cards``), sorted by name."""
    d = cache_cards_dir()
    return [read_card(p, cache_weights_dir()) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


def find_card(name: str) -> ModelCard | None:
    """The card named ``name``: the repository's first, then the cache's; ``None`` if neither has one."""
    for d, home in ((CARDS_DIR, None), (cache_cards_dir(), cache_weights_dir())):
        p = d / f"{name}.json"
        if p.is_file():
            return read_card(p, home)
    return None


def card(name: str) -> ModelCard:
    """Return the card registered under ``name`` (repository cards first, then cache cards).

    Raises
    ------
    CheckpointError
        If no model of that name is registered.
    """
    c = find_card(name)
    if c is None:
        known = ", ".join(c.name for c in list_cards() + list_cache_cards()) or "none"
        raise CheckpointError(f"unknown model {name!r} (registered: {known})")
    return c


def sha256_of(name: str) -> str | None:
    """The registered sha256 of model ``name``, or ``None`` for a model outside the zoo (a path, a user model)."""
    c = find_card(str(name))
    return c.sha256 if c is not None else None


def weights_path(name: str) -> Path:
    """Path of the weights file of model ``name``."""
    return card(name).path


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        from editable_deepsc.imaging.io import file_mode

        os.chmod(tmp, file_mode())  # mkstemp makes 0600; give what the umask says (0644 usually)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class ConvertResult:
    """What a converter of third-party weights into the user cache did.

    ``converted`` is False when the cached card and file were already good; ``parity_max_abs``
    is the converter's port-vs-original check, when it makes one.
    """

    card_path: Path
    weights_path: Path
    converted: bool
    sha256: str
    parity_max_abs: float | None = None


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
    c = None
    if not p.suffix and not p.exists():
        c = card(str(name_or_path))
        p, sha256 = c.path, c.sha256
    return load_verified(p, sha256 if verify else None, c)


def load_verified(path: Path, sha256: str | None, owner: ModelCard | None = None) -> dict[str, torch.Tensor]:
    """Load the safetensors file ``path``, checking ``sha256`` when given.

    Errors name the file and, when ``owner`` (its card) has one, quote the card's ``fix``.
    """
    p = Path(path)
    err = owner.problem if owner is not None else CheckpointError
    if not p.is_file():
        raise err(f"{owner.name} weights missing ({p})" if owner is not None else f"checkpoint not found: {p}")
    if sha256:
        got = sha256_file(p)
        if got != sha256:
            raise err(f"sha256 mismatch for {p.name}: expected {sha256[:12]}…, got {got[:12]}…")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise err(f"corrupt checkpoint {p.name}: {e}") from None


def file_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Safetensors header metadata of ``path`` (``{}`` when it has none).

    Raises
    ------
    CheckpointError
        The file is not readable safetensors.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
        raise CheckpointError(f"corrupt checkpoint {Path(path).name}: {e.__class__.__name__}") from None


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
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = card(str(name_or_path)).path
    state = load_state_dict(name_or_path)
    md = file_metadata(p)
    if md.get("format") != fmt:
        raise CheckpointError(f"{p.name} is not {what}")
    return state, md


def check_file(c: ModelCard) -> str | None:
    """What is wrong with the weights of card ``c`` (missing file, sha256 mismatch), or ``None`` if nothing."""
    if not c.path.is_file():
        return "file missing"
    got = sha256_file(c.path)
    return None if got == c.sha256 else f"sha256 {got[:12]}… != registered {c.sha256[:12]}…"


def verify_all() -> list[tuple[str, bool, str]]:
    """Check every registered file; return ``(name, ok, message)`` rows."""
    return [(c.name, (m := check_file(c)) is None, m or "ok") for c in list_cards()]
