"""Reading and writing images with clear errors; atomic writes.

Every user image goes through :func:`read_image` (the declared size checked against
:data:`MAX_PIXELS` before decoding, EXIF orientation, 16-bit scaling, big photos reduced while
decoding); every output goes through :func:`check_output` before any work and is written with
:func:`atomic_write` (temporary file + rename, mode 0644 under the usual umask).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import IO, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from editable_deepsc.errors import BadInput, ImageError, ImageTooLarge

MIN_SIZE = 8


def from_pil(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float32 tensor of shape (1, 3, H, W) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Convert a (3, H, W) or (1, 3, H, W) tensor in [-1, 1] to an RGB PIL image."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), "RGB")


MAX_PIXELS = 4096 * 4096
"""Pixel budget of an input image (width × height, about 16.8 million, the web's 4096 px per side).

Checked on the size the file *declares*, before any pixel is decoded, so a small file that
claims a huge image (a decompression bomb) costs nothing."""
WORK_SIDE = 1024
"""Photos whose longer side exceeds this are reduced while decoding (JPEG: DCT scaling, others:
box reduction, then an antialiased resize) to this longer side; faces are aligned from that."""
_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF files when the optional pillow-heif package is installed."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover - optional
        pass


def open_image(source: str | os.PathLike | IO[bytes], name: str | None = None, max_pixels: int = MAX_PIXELS,
               max_side: int | None = None) -> Image.Image:
    """Open an image file lazily and check the size it declares, decoding no pixels.

    Parameters
    ----------
    source : path or binary file object
    name : str, optional
        How errors name the file (default: the path's name).
    max_pixels : int
        Largest accepted width × height (:data:`MAX_PIXELS`).
    max_side : int, optional
        Largest accepted width or height.

    Returns
    -------
    PIL.Image.Image
        Opened, not loaded (the caller closes it; :func:`decode_image` does).

    Raises
    ------
    ImageTooLarge
        The declared size exceeds the budget.
    ImageError
        Not an image Pillow can read.
    """
    label = name or (Path(source).name if isinstance(source, (str, os.PathLike)) else "upload")
    register_heif()
    try:
        with warnings.catch_warnings():  # the budget below is stricter than Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)
    except Image.DecompressionBombError:
        w, h = _declared_size(source)
        raise ImageTooLarge(f"image {label} is {w}x{h} px ({w * h / 1e6:.1f} Mpx); the limit is "
                            f"{describe_budget(max_pixels)}") from None
    except _IMAGE_ERRORS as e:
        raise ImageError(f"cannot read image {label}: {e.__class__.__name__}: {e}") from None
    w, h = im.size
    if w * h > max_pixels or (max_side is not None and max(w, h) > max_side):
        im.close()
        limit = describe_budget(max_pixels) if max_side is None else f"{max_side} px per side"
        raise ImageTooLarge(f"image {label} is {w}x{h} px ({w * h / 1e6:.1f} Mpx); the limit is {limit}")
    return im


def _declared_size(source) -> tuple[int, int]:
    """The size a file declares, read from its header with Pillow's own bomb guard off (for the
    message only: the caller refuses the file anyway). Decodes no pixels."""
    if hasattr(source, "seek"):
        source.seek(0)
    with _GUARD_LOCK:
        guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(source) as im:
                return im.size
        finally:
            Image.MAX_IMAGE_PIXELS = guard


_GUARD_LOCK = threading.Lock()


def describe_budget(max_pixels: int) -> str:
    """E.g. ``"16.8 Mpx (4096x4096)"``."""
    side = math.isqrt(max_pixels)
    square = f" ({side}x{side})" if side * side == max_pixels else ""
    return f"{max_pixels / 1e6:.1f} Mpx{square}"


def decode_image(im: Image.Image, work_side: int | None = WORK_SIDE, name: str = "image") -> Image.Image:
    """Decode an opened image into RGB: EXIF orientation applied, 16-bit scaled, big photos reduced.

    Parameters
    ----------
    im : PIL.Image.Image
        From :func:`open_image` (closed here).
    work_side : int or None
        Reduce photos whose longer side exceeds this (``None``: keep the full size).
    name : str
        How errors name the file.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, upright (EXIF orientation applied); 16-bit greyscale is scaled to 8 bits
        (not clipped), and the longer side is at most ``work_side``.

    Raises
    ------
    ImageError
        Damaged or truncated data.
    """
    try:
        with im:
            if work_side is not None and max(im.size) > work_side and im.format == "JPEG":
                im.draft("RGB", (work_side, work_side))  # decode at 1/2, 1/4 or 1/8 scale
            im.load()
            img = ImageOps.exif_transpose(im)
            img = _to_rgb(img)
    except _IMAGE_ERRORS as e:
        raise ImageError(f"cannot read image {name}: {e.__class__.__name__}: {e}") from None
    if work_side is not None and max(img.size) > work_side:
        w, h = img.size
        factor = max(w, h) // work_side
        if factor >= 2:
            img = img.reduce(factor)  # box average by an integer factor: cheap and antialiased
        s = work_side / max(img.size)
        if s < 1:
            img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))), Image.LANCZOS)
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any Pillow mode; 16/32-bit integer and float greyscale are scaled, not clipped."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "F" else max(1.0, float(arr.max()))
        if img.mode == "I" and arr.max() <= 255:
            top = 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    return img.convert("RGB")


def read_image(path: str | os.PathLike | IO[bytes], max_pixels: int = MAX_PIXELS, work_side: int | None = WORK_SIDE,
               name: str | None = None) -> Image.Image:
    """:func:`open_image` then :func:`decode_image`: the one way user images are read."""
    im = open_image(path, name=name, max_pixels=max_pixels)
    return decode_image(im, work_side=work_side, name=name or (Path(path).name if isinstance(path, (str, os.PathLike))
                                                                else "upload"))


def load_image(path: str | os.PathLike, min_size: int = MIN_SIZE, max_pixels: int = MAX_PIXELS,
               work_side: int | None = WORK_SIDE) -> torch.Tensor:
    """Read an image file into a (1, 3, H, W) float32 tensor in [-1, 1].

    The declared size is checked against ``max_pixels`` before decoding; EXIF orientation is
    applied; photos larger than ``work_side`` are reduced (see :func:`decode_image`).

    Raises
    ------
    ImageError
        Missing, unreadable, non-image, over the pixel budget (:class:`ImageTooLarge`), or
        smaller than ``min_size`` on a side.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if p.is_dir():
        raise ImageError(f"not an image file (a directory): {p}")
    if not p.is_file():
        raise ImageError(f"not a regular file: {p}")
    if p.stat().st_size == 0:
        raise ImageError(f"empty file: {p}")
    img = read_image(p, max_pixels=max_pixels, work_side=work_side)
    if min(img.size) < min_size:
        raise ImageError(f"image too small: {img.size[0]}x{img.size[1]} (minimum {min_size}px per side)")
    return from_pil(img)


def file_mode() -> int:
    """``0o666`` less the process umask: the mode a plain ``open(path, "w")`` would give."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


_UMASK_LOCK = threading.Lock()


def check_output(path: str | os.PathLike, what: str = "output") -> Path:
    """Check that ``path`` can be written, before any work is done.

    Missing parent folders are fine (they are created when writing) if the nearest existing
    one is a writable folder. An existing file at ``path`` is replaced when written.

    Raises
    ------
    BadInput
        ``path`` is an existing folder, lies under a regular file, or its folder is not writable.
    """
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{what} {p} is a folder, not a file")
    if p.exists() and not p.is_file():
        raise BadInput(f"{what} {p} exists and is not a regular file")
    parent = p.parent
    missing = False
    while not parent.exists():
        if parent.is_symlink():
            raise BadInput(f"cannot write {what} {p}: {parent} is a broken link")
        missing, parent = True, parent.parent
    if not parent.is_dir():
        raise BadInput(f"cannot write {what} {p}: {parent} is not a folder")
    if missing:
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BadInput(f"cannot write {what} {p}: folder {parent} is not writable")
        return p
    try:  # os.access can say yes where writing fails (root on /proc, read-only mounts): try it
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".edsc-check-")
    except OSError as e:
        raise BadInput(f"cannot write {what} {p}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check that files can be written into the folder ``path`` (created if missing), before any work.

    Raises
    ------
    BadInput
        ``path`` exists and is not a folder, lies under a regular file, or is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise BadInput(f"{what} {p} exists and is not a folder")
    check_output(p / ".edsc-write-check", what)
    return p


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` in the same folder, then rename over ``path``.

    The file gets :func:`file_mode` permissions (0644 under the usual umask). Missing parent
    folders are created. Nothing is left behind if ``write`` fails.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=p.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def check_image_output(path: str | os.PathLike, what: str = "output image") -> Path:
    """:func:`check_output` plus a supported image format (from the suffix)."""
    p = Path(path)
    if Image.registered_extensions().get(p.suffix.lower()) is None:
        raise ImageError(f"unsupported output format: {p.suffix or '(no suffix)'}")
    return check_output(p, what)


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a tensor image atomically (format from the suffix, mode 0644 under the usual umask)."""
    p = Path(path)
    img = to_pil(x)
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"unsupported output format: {p.suffix or '(no suffix)'}")
    return atomic_write(p, lambda tmp: img.save(tmp, format=fmt))


def resize(x: torch.Tensor, size: int | tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize (N, C, H, W) images with antialiasing; differentiable; output clamped to [-1, 1]."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    antialias = mode in ("bilinear", "bicubic")
    y = F.interpolate(x, size=size, mode=mode, align_corners=False if antialias else None, antialias=antialias)
    return y.clamp(-1, 1)
