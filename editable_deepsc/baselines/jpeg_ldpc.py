"""JPEG (or WebP/HEIF) + 5G LDPC + QAM: the separate source-channel coding baseline.

Transmitter, for an image ``(1, 3, H, W)`` at channel bandwidth ratio ``cbr``:

1. budget ``k = round(cbr·H·W·C)`` complex channel uses;
2. MCS (modulation, code rate) for the SNR from the measured table
   (:func:`editable_deepsc.channel.mcs.select_mcs`: highest rate with BLER < 10%);
3. the code-block plan for ``k`` symbols at that MCS gives the payload capacity
   (:func:`editable_deepsc.channel.transport.plan_blocks`);
4. the codec quality is the highest whose packet (9 parameter bytes + stripped
   codec data, :mod:`editable_deepsc.baselines.codecs`) fits the capacity;
5. CRC + LDPC encoding, scrambling, QAM mapping, channel.

Receiver: coherent equalisation and per-symbol LLRs (``no/|h|²`` for
Rayleigh), BP decoding, CRC check per block, header rebuild, image decoding.
Both ends know the SNR and ``k`` (so the MCS and the block plan need no
signalling). The digital cliff is kept visible: when a CRC fails, the image
cannot be parsed, or even the lowest quality does not fit, the receiver
returns the fallback image (mid-grey unless another is given, e.g. a
dataset mean) with ``decoded_ok = False``; it never raises for channel
errors. Only bad *arguments* raise :class:`~editable_deepsc.errors.BadInput`.

:func:`transmit_ideal` is the digital upper bound: ``⌊k·log2(1+SNR)⌋`` bits
delivered without error.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch

from editable_deepsc.baselines.codecs import PARAM_BYTES, Packet, check_codec, fit_quality, read_packet
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.digital import send_bits
from editable_deepsc.channel.ldpc import DEFAULT_DECODER, check_decoder
from editable_deepsc.channel.mcs import MCS_CANDIDATES, MCSChoice, select_mcs
from editable_deepsc.channel.transport import decode_payload, encode_payload, plan_blocks
from editable_deepsc.errors import BadInput
from editable_deepsc.imaging import from_pil, resize, to_pil
from editable_deepsc.metrics.image import SSIM_WINDOW, psnr, ssim
from editable_deepsc.rng import make_generator

@dataclass
class TransmitResult:
    """Outcome of one transmission. ``image`` is the receiver's output; the rest is JSON-ready.

    Attributes
    ----------
    image : Tensor, float32, shape (1, 3, H, W), in [-1, 1]
    decoded_ok : bool
        ``False`` when the receiver fell back to the fallback image.
    failure : str or None
        ``"crc"``, ``"parse"`` or ``"nothing-fits"`` when ``decoded_ok`` is ``False``.
    ber : float or None
        Payload bit error rate after channel decoding (``None`` if nothing was sent).
    raw_ber : float or None
        Uncoded (hard-decision) bit error rate of the coded bits.
    bler : float or None
        Fraction of code blocks whose CRC failed.
    """

    image: torch.Tensor
    method: str
    snr_db: float
    channel: str
    cbr: float
    k: int
    image_size: list[int]
    modulation: str | None
    code_rate: float | None
    codec: str
    quality: int | None
    payload_bytes: int
    capacity_bytes: int
    header_bytes_saved: int
    num_blocks: int
    ber: float | None
    raw_ber: float | None
    bler: float | None
    decoded_ok: bool
    failure: str | None
    mcs_reliable: bool | None
    mcs_table_bler: float | None
    decoder: str | None
    psnr: float | None
    ssim: float | None
    seed: int
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """All fields except the image, plus library versions and the (empty) list of proxy metrics."""
        d = {k: v for k, v in asdict(self).items() if k not in ("image", "extra")}
        d.update(self.extra)
        d["proxy_metrics"] = []
        d["versions"] = _versions()
        return d


def _versions() -> dict:
    out = {}
    for pkg in ("sionna-no-rt", "ldpc", "pillow", "pillow-heif"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            out[pkg] = None
    return out


def channel_uses(cbr: float, image_shape: tuple[int, ...]) -> int:
    """Budget ``k = round(cbr·H·W·C)`` for an image of shape (1, C, H, W).

    Raises
    ------
    BadInput
        For ``cbr`` not a finite positive number, or ``k < 1``.
    """
    try:
        c = float(cbr)
    except (TypeError, ValueError):
        raise BadInput(f"CBR must be a number, got {cbr!r}") from None
    if not math.isfinite(c) or c <= 0:
        raise BadInput(f"CBR must be > 0, got {cbr}")
    n = int(np.prod(image_shape[1:]))
    k = int(round(c * n))
    if k < 1:
        raise BadInput(f"CBR {cbr} is too small: k = round({c}·{n}) = 0 channel uses")
    return k


def _check_image(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise BadInput(f"image must be a (1, 3, H, W) tensor in [-1, 1], got {shape}")
    if min(image.shape[-2:]) < 1:
        raise BadInput(f"zero-size image {tuple(image.shape)}")
    return image.detach().float().clamp(-1, 1)


def _fallback(image: torch.Tensor, fallback: torch.Tensor | None) -> torch.Tensor:
    if fallback is None:
        return torch.zeros_like(image)  # mid-grey
    fb = fallback.detach().float().reshape(1, 3, *fallback.shape[-2:])
    if fb.shape != image.shape:
        fb = resize(fb, tuple(image.shape[-2:]))
    return fb.clamp(-1, 1)


def _quality_metrics(rx: torch.Tensor, tx: torch.Tensor) -> tuple[float, float | None]:
    p = float(psnr(rx, tx)[0])
    s = float(ssim(rx, tx)[0]) if min(tx.shape[-2:]) >= SSIM_WINDOW else None
    return (p if math.isfinite(p) else 100.0), s


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits[: bits.size - bits.size % 8]).tobytes()


def transmit_jpeg_ldpc(
    image: torch.Tensor,
    cbr: float,
    channel: ChannelConfig,
    codec: str = "jpeg",
    decoder: str = DEFAULT_DECODER,
    seed: int = 0,
    fallback: torch.Tensor | None = None,
    target_bler: float = 0.1,
    mcs: MCSChoice | None = None,
) -> TransmitResult:
    """Send an image with codec + 5G LDPC + QAM over ``channel`` and decode it.

    Parameters
    ----------
    image : Tensor, float32, shape (1, 3, H, W), in [-1, 1]
    cbr : float
        Channel bandwidth ratio, ``k / (H·W·C)``.
    channel : ChannelConfig
        AWGN or Rayleigh (coherent receiver) at an average SNR per complex symbol;
        its ``block_length`` is the symbols per Rayleigh gain (``None``: one gain for the whole image).
    codec : str
        ``"jpeg"``, ``"webp"`` or ``"heif"``.
    decoder : str
        LDPC BP decoder, see :data:`editable_deepsc.channel.ldpc.DECODERS`.
    seed : int
        Seeds the channel noise and fading.
    fallback : Tensor, optional
        Image returned on failure (e.g. a dataset mean); default mid-grey.
    target_bler : float
        BLER threshold of the MCS choice.
    mcs : MCSChoice, optional
        Force an MCS instead of the table's choice.

    Returns
    -------
    TransmitResult
    """
    t0 = time.perf_counter()
    image = _check_image(image)
    snr_db, name = channel.snr_db, channel.name
    codec = check_codec(codec)
    decoder = check_decoder(decoder)
    k = channel_uses(cbr, tuple(image.shape))
    choice = mcs or select_mcs(snr_db, name, target_bler=target_bler)
    plan = plan_blocks(k, choice.modulation, choice.code_rate)
    capacity = plan.payload_bits // 8
    if capacity < PARAM_BYTES + 1 and mcs is None:
        best = max(MCS_CANDIDATES, key=lambda m: m.efficiency)
        if plan_blocks(k, best.modulation, best.code_rate).payload_bits // 8 < PARAM_BYTES + 1:
            raise BadInput(  # too small at any SNR: an argument error
                f"CBR {cbr} is too small: k={k} channel uses carry fewer than the {PARAM_BYTES + 1} payload bytes "
                f"needed for the parameters and data even at {best.modulation} rate {best.code_rate:.3g}"
            )
    elif capacity < PARAM_BYTES + 1:
        raise BadInput(
            f"CBR {cbr} is too small: k={k} channel uses at {choice.modulation} rate {choice.code_rate:.3g} "
            f"carry {capacity} payload bytes, fewer than the {PARAM_BYTES + 1} needed for the parameters and data"
        )
    h, w = image.shape[-2:]
    base = dict(method="jpeg-ldpc", snr_db=snr_db, channel=name, cbr=float(cbr), k=k, image_size=[h, w],
                modulation=choice.modulation, code_rate=round(choice.code_rate, 6), codec=codec,
                capacity_bytes=capacity, num_blocks=plan.num_blocks, mcs_reliable=choice.reliable,
                mcs_table_bler=choice.bler, decoder=decoder, seed=int(seed))
    # at this SNR's MCS nothing fits (the same CBR carries an image at a higher SNR): a failed link, not an error
    packet = fit_quality(to_pil(image), codec, capacity) if capacity >= PARAM_BYTES + 1 else None
    if packet is None:
        return _result(image, _fallback(image, fallback), base, None, False, "nothing-fits", None, None, None, t0)

    rng = make_generator(seed)
    coded = encode_payload(_bytes_to_bits(packet.data), plan)
    link = send_bits(coded, choice.modulation, name, snr_db, rng=rng, fading_block=channel.block_length)
    rx = decode_payload(link.llr, plan, decoder)
    sent_bits = len(packet.data) * 8
    tx_bits = _bytes_to_bits(packet.data)
    ber = float((rx.bits[:sent_bits] != tx_bits).mean())
    bler = float(1.0 - rx.block_ok.mean())
    raw_ber = link.raw_errors / coded.numel()
    if not rx.all_ok:
        return _result(image, _fallback(image, fallback), base, packet, False, "crc", ber, raw_ber, bler, t0)
    try:
        out = from_pil(read_packet(_bits_to_bytes(rx.bits)))
    except ValueError:
        return _result(image, _fallback(image, fallback), base, packet, False, "parse", ber, raw_ber, bler, t0)
    if out.shape != image.shape:
        return _result(image, _fallback(image, fallback), base, packet, False, "parse", ber, raw_ber, bler, t0)
    return _result(image, out, base, packet, True, None, ber, raw_ber, bler, t0)


def _result(tx, rx, base, packet: Packet | None, ok, failure, ber, raw_ber, bler, t0) -> TransmitResult:
    p, s = _quality_metrics(rx, tx)
    return TransmitResult(
        image=rx, quality=packet.quality if packet else None, payload_bytes=len(packet.data) if packet else 0,
        header_bytes_saved=packet.header_bytes_saved if packet else 0, ber=ber, raw_ber=raw_ber, bler=bler,
        decoded_ok=ok, failure=failure, psnr=p, ssim=s, seconds=round(time.perf_counter() - t0, 3), **base,
    )


def transmit_ideal(
    image: torch.Tensor,
    cbr: float,
    channel: ChannelConfig,
    codec: str = "jpeg",
    seed: int = 0,
    fallback: torch.Tensor | None = None,
) -> TransmitResult:
    """Digital upper bound: ``⌊k·log2(1 + SNR)⌋`` bits delivered error-free.

    The SNR is the average one for either channel (for Rayleigh this exceeds
    the ergodic capacity, so it stays an upper bound). Arguments as in
    :func:`transmit_jpeg_ldpc`.
    """
    t0 = time.perf_counter()
    image = _check_image(image)
    snr_db = channel.snr_db
    codec = check_codec(codec)
    k = channel_uses(cbr, tuple(image.shape))
    capacity = int(math.floor(k * math.log2(1.0 + 10.0 ** (snr_db / 10.0)))) // 8
    if capacity < PARAM_BYTES + 1:
        raise BadInput(f"CBR {cbr} is too small: k={k} channel uses at {snr_db:g} dB carry {capacity} bytes, "
                       f"fewer than the {PARAM_BYTES + 1} needed for the parameters and data")
    h, w = image.shape[-2:]
    base = dict(method="ideal", snr_db=snr_db, channel=channel.name, cbr=float(cbr), k=k, image_size=[h, w],
                modulation=None, code_rate=None, codec=codec, capacity_bytes=capacity, num_blocks=0,
                mcs_reliable=None, mcs_table_bler=None, decoder=None, seed=int(seed))
    packet = fit_quality(to_pil(image), codec, capacity)
    if packet is None:
        return _result(image, _fallback(image, fallback), base, None, False, "nothing-fits", None, None, None, t0)
    out = from_pil(read_packet(packet.data))
    return _result(image, out, base, packet, True, None, 0.0, 0.0, 0.0, t0)


__all__ = ["TransmitResult", "channel_uses", "transmit_ideal", "transmit_jpeg_ldpc"]
