"""Codecs with header stripping and the JPEG + 5G-LDPC baseline end to end."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from editable_deepsc.baselines.codecs import (
    PARAM_BYTES,
    encode_file,
    fit_quality,
    make_packet,
    read_packet,
    rebuild_jpeg,
    rebuild_webp,
    split_jpeg,
    split_webp,
)
from editable_deepsc.baselines.jpeg_ldpc import channel_uses, transmit_ideal, transmit_jpeg_ldpc
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.mcs import select_mcs
from editable_deepsc.demo import sample_face
from editable_deepsc.errors import BadInput
from editable_deepsc.imaging import to_pil

FIELDS = {"method", "snr_db", "channel", "cbr", "k", "image_size", "modulation", "code_rate", "codec", "quality",
          "payload_bytes", "ber", "bler", "decoded_ok", "psnr", "ssim", "seed"}


@pytest.fixture(scope="module")
def face64() -> torch.Tensor:
    return sample_face(64)


@pytest.fixture(scope="module")
def face256() -> torch.Tensor:
    return sample_face(256)


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("quality", [5, 50, 95])
def test_jpeg_header_rebuild_is_bit_exact(size, quality):
    img = to_pil(sample_face(size))
    full = encode_file(img, "jpeg", quality)
    header, scan = split_jpeg(full)
    assert rebuild_jpeg(size, size, quality, scan) == full
    p = make_packet(img, "jpeg", quality)
    assert len(p.data) == PARAM_BYTES + len(scan)
    assert p.file_bytes == len(full)
    assert p.header_bytes_saved == len(header) + 2 - PARAM_BYTES > 550  # ~600 bytes of tables saved
    with Image.open(io.BytesIO(full)) as ref:
        assert read_packet(p.data).tobytes() == ref.convert("RGB").tobytes()


def test_webp_riff_rebuild_and_heif_packets():
    img = to_pil(sample_face(64))
    full = encode_file(img, "webp", 40)
    assert rebuild_webp(split_webp(full)) == full
    for codec in ("webp", "heif"):
        p = make_packet(img, codec, 40)
        out = read_packet(p.data)
        assert out.size == (64, 64)


def test_read_packet_rejects_garbage_with_valueerror_only():
    p = make_packet(to_pil(sample_face(64)), "jpeg", 50)
    for data in (b"", b"\x00" * 4, bytes([0xF0]) + p.data[1:], p.data[:6] + b"\xff\xff\xff" + p.data[9:]):
        with pytest.raises(ValueError):
            read_packet(data)
    try:  # a zeroed scan may decode to garbage or fail, but only with ValueError
        read_packet(p.data[:PARAM_BYTES] + bytes(len(p.data) - PARAM_BYTES))
    except ValueError:
        pass


def test_fit_quality_is_highest_that_fits(face64):
    img = to_pil(face64)
    assert fit_quality(img, "jpeg", 50) is None
    prev = 0
    for budget in (400, 800, 1600, 3200):
        p = fit_quality(img, "jpeg", budget)
        assert len(p.data) <= budget and p.quality >= prev
        if p.quality < 95:
            assert len(make_packet(img, "jpeg", p.quality + 1).data) > budget
        prev = p.quality


def test_transmit_64_over_snr_quality_grows_and_json_complete(face64):
    rows = [transmit_jpeg_ldpc(face64, cbr=0.2, channel=ChannelConfig("awgn", s), seed=1) for s in (0.0, 6.0, 12.0)]
    for r in rows:
        j = r.to_json()
        assert FIELDS <= set(j) and "image" not in j
        assert r.image.shape == face64.shape and r.k == round(0.2 * 64 * 64 * 3)
    assert all(r.decoded_ok for r in rows)  # the table's MCS keeps BLER < 10%
    assert rows[0].payload_bytes < rows[1].payload_bytes < rows[2].payload_bytes
    assert rows[0].psnr < rows[1].psnr < rows[2].psnr
    assert rows[2].psnr > 24.0


def test_cliff_high_rate_mcs_fails_at_low_snr(face64):
    """A link set up for 12 dB, used at 0 dB: CRC fails, the receiver shows the fallback."""
    mcs12 = select_mcs(12.0, "awgn")
    ok = transmit_jpeg_ldpc(face64, cbr=0.1, channel=ChannelConfig("awgn", 12.0), seed=2, mcs=mcs12)
    cliff = transmit_jpeg_ldpc(face64, cbr=0.1, channel=ChannelConfig("awgn", 0.0), seed=2, mcs=mcs12)
    assert ok.decoded_ok and not cliff.decoded_ok
    assert cliff.failure == "crc" and cliff.bler > 0.5 and cliff.ber > 0.01
    assert torch.equal(cliff.image, torch.zeros_like(face64))  # mid-grey
    assert cliff.psnr < ok.psnr - 10
    mean = torch.full_like(face64, 0.25)
    failed = transmit_jpeg_ldpc(face64, cbr=0.1, channel=ChannelConfig("awgn", 0.0), seed=2, mcs=mcs12, fallback=mean)
    assert torch.equal(failed.image, mean)


def test_nothing_fits_is_a_result_not_an_error(face64):
    """At 0 dB a 64x64 JPEG needs ~134 bytes even at quality 1: CBR 0.1 (100 bytes) is below the cliff."""
    r = transmit_jpeg_ldpc(face64, cbr=0.1, channel=ChannelConfig("awgn", 0.0), seed=0)
    assert not r.decoded_ok and r.failure == "nothing-fits" and r.payload_bytes == 0
    assert r.image.shape == face64.shape and r.capacity_bytes < 134
    assert transmit_jpeg_ldpc(face64, cbr=0.01, channel=ChannelConfig("awgn", 12.0)).failure == "nothing-fits"


def test_rayleigh_and_other_codecs_run(face64):
    r = transmit_jpeg_ldpc(face64, cbr=0.2, channel=ChannelConfig("rayleigh", 20.0), codec="webp", seed=0)
    assert r.channel == "rayleigh" and r.codec == "webp" and r.decoded_ok in (True, False)
    s = transmit_jpeg_ldpc(face64, cbr=0.2, channel=ChannelConfig("awgn", 12.0), codec="heif", decoder="sionna", seed=0)
    assert s.codec == "heif" and s.decoder == "sionna"


def test_ideal_capacity_bounds_the_coded_link(face64):
    for s in (0.0, 6.0, 12.0):
        ideal = transmit_ideal(face64, cbr=0.1, channel=ChannelConfig("awgn", s))
        coded = transmit_jpeg_ldpc(face64, cbr=0.1, channel=ChannelConfig("awgn", s), seed=0)
        assert ideal.decoded_ok and ideal.ber == 0.0
        assert ideal.capacity_bytes > coded.capacity_bytes
        assert ideal.psnr >= coded.psnr - 1e-6


def test_transmit_256_at_6db(face256):
    r = transmit_jpeg_ldpc(face256, cbr=0.05, channel=ChannelConfig("awgn", 6.0), seed=0)
    assert r.decoded_ok and r.k == round(0.05 * 256 * 256 * 3) and r.psnr > 22


@pytest.mark.slow
@pytest.mark.parametrize("snr_db", [0.0, 6.0, 12.0])
def test_transmit_256_grid(face256, snr_db):
    r = transmit_jpeg_ldpc(face256, cbr=0.1, channel=ChannelConfig("awgn", snr_db), seed=0)
    assert r.decoded_ok and r.image.shape == face256.shape
    cliff = transmit_jpeg_ldpc(face256, cbr=0.1, channel=ChannelConfig("awgn", snr_db), seed=0,
                               mcs=select_mcs(snr_db + 6.0, "awgn"))
    assert not cliff.decoded_ok


@pytest.mark.parametrize("kwargs, match", [
    (dict(cbr=0.0), "CBR"), (dict(cbr=-1), "CBR"), (dict(cbr=float("nan")), "CBR"), (dict(cbr=1e-5), "too small"),
    (dict(snr_db=40.5), "SNR"), (dict(snr_db=-11), "SNR"), (dict(channel="rician"), "unknown channel"),
    (dict(codec="bpg"), "unknown codec"), (dict(decoder="turbo"), "unknown LDPC decoder"),
])
def test_bad_arguments_raise_badinput(face64, kwargs, match):
    args = dict(cbr=0.1, snr_db=6.0, channel="awgn") | kwargs
    with pytest.raises(BadInput, match=match):
        channel = ChannelConfig(args.pop("channel"), args.pop("snr_db"))
        transmit_jpeg_ldpc(face64, channel=channel, **args)


def test_cbr_too_small_only_at_this_snr_is_a_failed_link(face64):
    # k = 256 carries the parameters with 16-QAM at 6 dB AWGN, but not with the BPSK that 0 dB Rayleigh gets
    r = transmit_jpeg_ldpc(face64, cbr=1 / 48, channel=ChannelConfig("rayleigh", 0.0))
    assert not r.decoded_ok and r.failure == "nothing-fits" and r.payload_bytes == 0 and r.k == 256
    assert r.capacity_bytes < 10 and r.modulation == "bpsk"


def test_cbr_too_small_for_the_parameters(face64):
    assert channel_uses(0.001, tuple(face64.shape)) == 12
    with pytest.raises(BadInput, match="too small"):
        transmit_jpeg_ldpc(face64, cbr=0.001, channel=ChannelConfig("awgn", 6.0))
    with pytest.raises(BadInput, match="too small"):
        transmit_ideal(face64, cbr=0.0005, channel=ChannelConfig("awgn", 0.0))
    with pytest.raises(BadInput, match="image must be"):
        transmit_jpeg_ldpc(torch.zeros(3, 8, 8), cbr=0.1, channel=ChannelConfig("awgn", 6.0))
