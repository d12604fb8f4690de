"""Uploaded images: size limits, safe file names, decoding into the system's input.

Uploads are written only inside the app's own temporary folder, under a name
the server makes (session id + a sanitised version of the client's name), and
the final path is checked to lie inside that folder. Nothing a client sends is
ever used as a path as such.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from editable_deepsc.errors import BadInput, ImageError
from editable_deepsc.imaging.io import decode_image, register_heif, from_pil, open_image, resize


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be.

    Attributes
    ----------
    max_bytes : int
        Largest accepted file (default 8 MB).
    max_side : int
        Largest accepted width or height in pixels (default 4096).
    work_side : int
        Photos larger than this are downscaled (antialiased) before alignment.
    """

    max_bytes: int = 8 * 1024 * 1024
    max_side: int = 4096
    work_side: int = 1024

    def describe(self) -> str:
        """E.g. ``"8 MB and 4096 px per side"`` (MB = 2**20 bytes)."""
        mb = self.max_bytes / 2**20
        size = f"{mb:g} MB" if mb >= 1 else f"{self.max_bytes / 1024:.0f} KB"
        return f"{size} and {self.max_side} px per side"


class UploadTooLarge(ImageError):
    """The upload exceeds :attr:`UploadLimits.max_bytes` or :attr:`UploadLimits.max_side`."""


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitise_filename(name: str | None, default: str = "upload") -> str:
    """A file name safe to join to a folder: no separators, no leading dots, ASCII, ≤ 64 chars.

    Examples
    --------
    >>> sanitise_filename("../../etc/passwd")
    'etc_passwd'
    >>> sanitise_filename("C:\\\\Users\\\\me\\\\Föto 1.PNG")
    'C_Users_me_Foto_1.PNG'
    """
    raw = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode("ascii")
    s = _SAFE.sub("_", raw.replace("\\", "/").replace("/", "_"))
    s = re.sub(r"_+", "_", s).strip("._-")
    s = s[-64:].lstrip("._-")
    return s or default


def safe_path(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name`` after checking that it resolves inside ``folder``.

    Raises
    ------
    BadInput
        The resolved path escapes ``folder``.
    """
    root = Path(folder).resolve()
    p = (root / name).resolve()
    if p.parent != root:
        raise BadInput(f"refusing to write outside the upload folder: {name!r}")
    return p


def check_image_bytes(data: bytes, limits: UploadLimits) -> tuple[str, tuple[int, int]]:
    """Check size and format of an uploaded file without decoding its pixels.

    Returns
    -------
    format : str
        Pillow format name (``"PNG"``, ``"JPEG"``, ...).
    size : (int, int)
        Width and height.

    Raises
    ------
    UploadTooLarge, ImageError
    """
    if not data:
        raise ImageError("the upload is empty")
    if len(data) > limits.max_bytes:
        raise UploadTooLarge(f"the file is {len(data) / 2**20:.1f} MB; the limit is {limits.describe()}")
    register_heif()
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, size = im.format or "?", im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageError("not an image Pillow can read (use PNG, JPEG, WebP or HEIC)") from None
    if max(size) > limits.max_side:
        raise UploadTooLarge(f"the image is {size[0]}x{size[1]} px; the limit is {limits.describe()}")
    return fmt, size


def decode_upload(data: bytes, limits: UploadLimits) -> tuple[torch.Tensor, list[str]]:
    """Decode an uploaded image into the system's input.

    Non-square photos are cropped to their central square and photos larger
    than ``limits.work_side`` are downscaled; both are reported in ``notes``.

    Returns
    -------
    image : Tensor, float32, shape (1, 3, S, S), in [-1, 1]
    notes : list of str
        What was done to the photo (shown on the page).

    Raises
    ------
    UploadTooLarge, ImageError
    """
    check_image_bytes(data, limits)
    im = open_image(io.BytesIO(data), name="upload", max_pixels=limits.max_side ** 2, max_side=limits.max_side)
    try:
        img = decode_image(im, work_side=None, name="upload")
    except ImageError:
        raise ImageError("the image file is damaged or truncated") from None
    notes: list[str] = []
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
        notes.append(f"cropped the {w}x{h} photo to its central {s}x{s} square")
    x = from_pil(img)
    if x.shape[-1] > limits.work_side:
        notes.append(f"downscaled from {x.shape[-1]} to {limits.work_side} px")
        x = resize(x, limits.work_side)
    return x, notes


def save_upload(data: bytes, folder: str | os.PathLike, prefix: str, client_name: str | None) -> Path:
    """Write an upload into ``folder`` as ``<prefix>-<sanitised client name>``; return the path."""
    p = safe_path(folder, f"{sanitise_filename(prefix)}-{sanitise_filename(client_name)}")
    p.write_bytes(data)
    return p


__all__ = ["UploadLimits", "UploadTooLarge", "check_image_bytes", "decode_upload", "safe_path",
           "sanitise_filename", "save_upload"]
