"""Image codecs for the digital baseline: JPEG (header stripped), WebP (RIFF stripped), HEIF.

What crosses the channel is a *packet*: :data:`PARAM_BYTES` bytes of
parameters followed by the codec's data. For JPEG the data is only the
entropy-coded scan (between the SOS header and the EOI marker): the receiver
rebuilds the standard header (SOI, JFIF APP0, DQT, SOF0, DHT, SOS ≈ 600 bytes)
by encoding a blank image of the same size at the same quality with the same
encoder settings (baseline, 4:2:0, standard Huffman tables, no
``optimize``), which yields the identical header because libjpeg's header
depends only on those settings. The round trip is bit-exact
(``tests/test_jpeg_ldpc.py``); both ends must run the same Pillow/libjpeg.
For WebP the 20-byte RIFF/``VP8 `` chunk header is rebuilt from the length;
HEIF files are sent whole (their ~350 bytes of ISOBMFF boxes are not stripped).

Parameter bytes (big-endian)::

    byte 0     codec id (high nibble) | flags (low nibble: bit0 = stripped)
    byte 1     quality
    bytes 2-3  width
    bytes 4-5  height
    bytes 6-8  length of the codec data in bytes
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image

from editable_deepsc.errors import BadInput

PARAM_BYTES = 9
CODECS: tuple[str, ...] = ("jpeg", "webp", "heif")
_CODEC_ID = {"jpeg": 1, "webp": 2, "heif": 3}
_QUALITY_RANGE = {"jpeg": (1, 95), "webp": (0, 100), "heif": (0, 100)}
JPEG_SUBSAMPLING = 2  # 4:2:0


def check_codec(name: str) -> str:
    """Canonical codec name (``"jpeg"``, ``"webp"``, ``"heif"``) or :class:`BadInput`."""
    key = str(name).strip().lower()
    key = {"jpg": "jpeg", "heic": "heif"}.get(key, key)
    if key not in CODECS:
        raise BadInput(f"unknown codec {name!r} (choose from: {', '.join(CODECS)})")
    return key


def _register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def encode_file(img: Image.Image, codec: str, quality: int) -> bytes:
    """Encode a PIL RGB image to a complete file in ``codec`` at ``quality``."""
    buf = io.BytesIO()
    if codec == "jpeg":
        img.save(buf, "JPEG", quality=int(quality), subsampling=JPEG_SUBSAMPLING, optimize=False, progressive=False)
    elif codec == "webp":
        img.save(buf, "WEBP", quality=int(quality), method=4)
    elif codec == "heif":
        _register_heif()
        img.save(buf, "HEIF", quality=int(quality))
    else:  # pragma: no cover - guarded by check_codec
        raise BadInput(f"unknown codec {codec!r}")
    return buf.getvalue()


# ---------------------------------------------------------------- JPEG header stripping
def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte (just after the SOS segment)."""
    i = 2  # after SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("malformed JPEG: marker expected")
        marker = data[i + 1]
        seg_len = struct.unpack(">H", data[i + 2: i + 4])[0]
        if marker == 0xDA:  # SOS
            return i + 2 + seg_len
        i += 2 + seg_len
    raise ValueError("malformed JPEG: no SOS marker")


def split_jpeg(data: bytes) -> tuple[bytes, bytes]:
    """Split a baseline JPEG file into (header up to and including SOS, entropy-coded data).

    The trailing EOI marker (``FF D9``) is dropped.
    """
    start = _jpeg_scan_start(data)
    end = len(data) - 2 if data[-2:] == b"\xff\xd9" else len(data)
    return data[:start], data[start:end]


@lru_cache(maxsize=64)
def jpeg_header(width: int, height: int, quality: int) -> bytes:
    """The header Pillow writes for a ``width``×``height`` JPEG at ``quality`` (rebuilt at the receiver)."""
    blank = Image.new("RGB", (int(width), int(height)), (128, 128, 128))
    return split_jpeg(encode_file(blank, "jpeg", quality))[0]


def rebuild_jpeg(width: int, height: int, quality: int, scan: bytes) -> bytes:
    """Standard JPEG file from the entropy-coded ``scan`` and the parameters."""
    return jpeg_header(width, height, quality) + scan + b"\xff\xd9"


# ---------------------------------------------------------------- WebP RIFF stripping
def split_webp(data: bytes) -> bytes | None:
    """The VP8 bitstream of a simple lossy WebP file, or ``None`` if it is not one."""
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
        return None
    size = struct.unpack("<I", data[16:20])[0]
    if 20 + size + (size & 1) != len(data):
        return None
    return data[20: 20 + size]


def rebuild_webp(vp8: bytes) -> bytes:
    """Simple lossy WebP file around a VP8 bitstream."""
    pad = b"\x00" if len(vp8) & 1 else b""
    chunk = b"VP8 " + struct.pack("<I", len(vp8)) + vp8 + pad
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


# ---------------------------------------------------------------- packets
@dataclass(frozen=True)
class Packet:
    """An encoded image ready for the channel.

    Attributes
    ----------
    data : bytes
        ``PARAM_BYTES`` parameter bytes + codec data.
    codec : str
    quality : int
    file_bytes : int
        Size of the complete standard file the receiver rebuilds.
    """

    data: bytes
    codec: str
    quality: int
    file_bytes: int

    @property
    def header_bytes_saved(self) -> int:
        """Bytes of the standard file not sent (net of the parameter bytes)."""
        return self.file_bytes - len(self.data)


def make_packet(img: Image.Image, codec: str, quality: int) -> Packet:
    """Encode ``img`` and strip what the receiver can rebuild."""
    codec = check_codec(codec)
    full = encode_file(img, codec, quality)
    stripped = 0
    body = full
    if codec == "jpeg":
        body, stripped = split_jpeg(full)[1], 1
    elif codec == "webp":
        vp8 = split_webp(full)
        if vp8 is not None:
            body, stripped = vp8, 1
    w, h = img.size
    if w > 0xFFFF or h > 0xFFFF or len(body) >= 1 << 24:
        raise BadInput(f"image too large for the packet format: {w}x{h}, {len(body)} bytes")
    params = bytes([(_CODEC_ID[codec] << 4) | stripped, int(quality) & 0xFF]) + struct.pack(">HH", w, h)
    params += len(body).to_bytes(3, "big")
    return Packet(params + body, codec, int(quality), len(full))


def read_packet(data: bytes) -> Image.Image:
    """Rebuild the file from a received packet and decode it.

    Raises
    ------
    ValueError
        If the parameters are inconsistent or the codec cannot parse the data
        (any decoder exception is turned into ``ValueError``).
    """
    if len(data) < PARAM_BYTES:
        raise ValueError("packet shorter than its parameters")
    codec_id, flags, quality = data[0] >> 4, data[0] & 0x0F, data[1]
    w, h = struct.unpack(">HH", data[2:6])
    length = int.from_bytes(data[6:9], "big")
    codec = {v: k for k, v in _CODEC_ID.items()}.get(codec_id)
    if codec is None or length > len(data) - PARAM_BYTES or w == 0 or h == 0:
        raise ValueError("corrupt packet parameters")
    body = data[PARAM_BYTES: PARAM_BYTES + length]
    if codec == "jpeg" and flags & 1:
        body = rebuild_jpeg(w, h, quality, body)
    elif codec == "webp" and flags & 1:
        body = rebuild_webp(body)
    if codec == "heif":
        _register_heif()
    try:
        with Image.open(io.BytesIO(body)) as im:
            im.load()
            out = im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any parse failure of corrupt data is a decoding failure
        raise ValueError(f"{codec} decoding failed: {e.__class__.__name__}: {e}") from None
    if out.size != (w, h):
        raise ValueError(f"decoded size {out.size} differs from the parameters {(w, h)}")
    return out


def fit_quality(img: Image.Image, codec: str, budget_bytes: int) -> Packet | None:
    """Highest-quality packet of at most ``budget_bytes`` (binary search over quality).

    Packet size is taken as non-decreasing in quality (true for these encoders
    up to a few bytes); returns ``None`` if even the lowest quality does not fit.
    """
    codec = check_codec(codec)
    lo, hi = _QUALITY_RANGE[codec]
    best = make_packet(img, codec, lo)
    if len(best.data) > budget_bytes:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        p = make_packet(img, codec, mid)
        if len(p.data) <= budget_bytes:
            lo, best = mid, p
        else:
            hi = mid - 1
    return best


__all__ = [
    "CODECS",
    "PARAM_BYTES",
    "Packet",
    "check_codec",
    "encode_file",
    "fit_quality",
    "jpeg_header",
    "make_packet",
    "read_packet",
    "rebuild_jpeg",
    "rebuild_webp",
    "split_jpeg",
    "split_webp",
]
