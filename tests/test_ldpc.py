"""Uncoded BER against theory, 5G-LDPC coding, the two BP decoders, CRC segmentation, the MCS table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from editable_deepsc.channel import AWGN, RayleighBlockFading, snr_to_no
from editable_deepsc.channel.digital import send_bits
from editable_deepsc.channel.ldpc import DECODERS, LDPC5GCode, check_decoder, get_code
from editable_deepsc.channel.mcs import MCS_CANDIDATES, SNR_GRIDS, bler_at, load_table, select_mcs
from editable_deepsc.channel.qam import Modulation
from editable_deepsc.channel.transport import (
    MAX_K_BG1,
    crc_length,
    decode_payload,
    encode_payload,
    plan_blocks,
)
from editable_deepsc.errors import BadInput

N_BITS = 600_000


def qfunc(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _uncoded_ber(mod: Modulation, snr_db: float, gen: torch.Generator, rayleigh: bool = False) -> float:
    m = mod.bits_per_symbol
    bits = torch.randint(0, 2, (1, N_BITS - N_BITS % m), generator=gen)
    x = mod.map(bits)
    no = snr_to_no(snr_db)
    y = RayleighBlockFading(block_length=1)(x, no, rng=gen) if rayleigh else AWGN()(x, no, rng=gen)
    return (mod.hard(y) != bits.to(torch.uint8)).float().mean().item()


@pytest.mark.parametrize("snr_db", [0.0, 4.0, 8.0])
def test_uncoded_qpsk_awgn_ber_matches_closed_form(snr_db, gen):
    theory = qfunc(math.sqrt(10 ** (snr_db / 10)))  # Gray QPSK, Es = 1: Pb = Q(sqrt(Es/N0))
    assert abs(_uncoded_ber(Modulation("qpsk"), snr_db, gen) / theory - 1) < 0.10


@pytest.mark.parametrize("snr_db", [6.0, 10.0, 14.0])
def test_uncoded_16qam_awgn_ber_matches_closed_form(snr_db, gen):
    a = math.sqrt(10 ** (snr_db / 10) / 5)  # half the minimum distance over the per-dimension noise std
    theory = (3 * qfunc(a) + 2 * qfunc(3 * a) - qfunc(5 * a)) / 4  # exact Gray 16-QAM
    assert abs(_uncoded_ber(Modulation("16qam"), snr_db, gen) / theory - 1) < 0.10


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_uncoded_bpsk_rayleigh_ber_matches_closed_form(snr_db, gen):
    s = 10 ** (snr_db / 10)
    theory = 0.5 * (1 - math.sqrt(s / (1 + s)))  # coherent BPSK, h ~ CN(0,1) per symbol
    assert abs(_uncoded_ber(Modulation("bpsk"), snr_db, gen, rayleigh=True) / theory - 1) < 0.10


def test_llrs_sign_convention_positive_means_one(gen):
    bits = torch.randint(0, 2, (1, 4000), generator=gen)
    out = send_bits(bits.float(), "16qam", "awgn", 30.0, rng=gen)
    assert torch.equal((out.llr > 0).to(torch.uint8), bits.to(torch.uint8))
    assert out.raw_errors == 0


def test_ldpc_code_noiseless_roundtrip_both_decoders(gen):
    code = LDPC5GCode(200, 600, bits_per_symbol=2)
    u = torch.randint(0, 2, (3, 200), generator=gen)
    c = code.encode(u)
    assert c.shape == (3, 600) and c.dtype == torch.float32
    llr = (2 * c - 1) * 10.0  # Sionna sign: positive = 1
    for d in DECODERS:
        assert torch.equal(code.decode(llr, d), u.to(torch.uint8))
    with pytest.raises(BadInput):
        code.decode(llr[:, :10])
    with pytest.raises(BadInput, match="unknown LDPC decoder"):
        check_decoder("turbo")


def _noisy_words(k, n, mod, snr_db, blocks, seed):
    g = torch.Generator().manual_seed(seed)
    code = get_code(k, n, Modulation(mod).bits_per_symbol)
    u = torch.randint(0, 2, (blocks, k), generator=g)
    llr = send_bits(code.encode(u), mod, "awgn", snr_db, rng=g).llr
    return code, u.to(torch.uint8), llr


def test_cpp_decoder_matches_sionna_on_the_same_noise():
    """Backs the default: the C++ product-sum decoder gives Sionna's bits (so its BER/BLER)."""
    code, u, llr = _noisy_words(512, 1024, "qpsk", 1.0, 40, seed=3)  # waterfall: some blocks fail
    a, b = code.decode(llr, "sionna"), code.decode(llr, "cpp")
    bler_a = (a != u).any(1).float().mean().item()
    bler_b = (b != u).any(1).float().mean().item()
    assert 0.05 < bler_a < 0.95, "the SNR must sit in the waterfall for this test to mean anything"
    assert (a == b).all(1).float().mean().item() >= 0.95
    assert abs(bler_a - bler_b) <= 0.05
    assert abs((a != u).float().mean().item() - (b != u).float().mean().item()) < 2e-3


def test_coded_ber_curve_is_monotone_with_a_waterfall():
    snrs = [-1.0, 0.0, 1.0, 2.0, 3.0]
    bers = []
    for i, s in enumerate(snrs):
        code, u, llr = _noisy_words(512, 1024, "qpsk", s, 30, seed=10 + i)
        bers.append((code.decode(llr) != u).float().mean().item())
    assert all(b1 >= b2 for b1, b2 in zip(bers, bers[1:])), bers
    assert bers[0] > 1e-2  # below the threshold: coding does not help
    assert bers[-1] < 1e-4  # 3 dB above: error-free in 30 blocks
    uncoded_2db = qfunc(math.sqrt(10 ** 0.2))
    assert bers[3] < uncoded_2db / 100  # coding gain at 2 dB: two decades below uncoded QPSK


def test_plan_blocks_respects_5g_limits_and_rate():
    for ns, mod, r in [(20000, "16qam", 0.5), (101, "qpsk", 1 / 3), (50000, "64qam", 5 / 6), (9000, "bpsk", 0.25)]:
        p = plan_blocks(ns, mod, r)
        m = p.bits_per_symbol
        assert p.coded_bits == ns * m
        for b in p.blocks:
            assert b.n % m == 0 and b.k / b.n <= r + 1e-9 and b.k <= MAX_K_BG1
            assert b.k <= 3824 or r > 1 / 3
        assert p.payload_bits == sum(b.k - crc_length(b.k) for b in p.blocks)
        if ns * m * r > 2000:
            assert p.payload_bits > 0.95 * ns * m * r  # CRC overhead stays small on long streams
    assert plan_blocks(5, "qpsk", 0.25).blocks == ()  # too few symbols for one block


def test_transport_roundtrip_and_crc_flags_the_failed_block(gen):
    p = plan_blocks(8000, "qpsk", 2 / 3)  # 10666 info bits: 2 blocks
    assert p.num_blocks >= 2
    payload = np.random.default_rng(0).integers(0, 2, p.payload_bits - 13).astype(np.uint8)
    coded = encode_payload(payload, p)
    assert coded.shape == (1, p.coded_bits)
    assert 0.45 < coded.mean().item() < 0.55  # scrambled: padding does not produce runs of zeros
    out = send_bits(coded, "qpsk", "awgn", 12.0, rng=gen)
    rx = decode_payload(out.llr, p)
    assert rx.all_ok and np.array_equal(rx.bits[: payload.size], payload)
    llr = out.llr.clone()
    second = slice(p.blocks[0].n, p.blocks[0].n + p.blocks[1].n)
    llr[0, second] = -llr[0, second]  # wreck block 2 only
    bad = decode_payload(llr, p)
    assert bad.block_ok.tolist() == [True, False] + [True] * (p.num_blocks - 2)
    with pytest.raises(ValueError):
        encode_payload(np.zeros(p.payload_bits + 1, np.uint8), p)


def test_shipped_mcs_table_is_complete_and_monotone():
    tab = load_table()
    for ch in ("awgn", "rayleigh"):
        rows = [e for e in tab["entries"] if e["channel"] == ch]
        assert len(rows) == len(MCS_CANDIDATES)
        grid = tab["snr_grids_db"][ch]
        assert grid == list(SNR_GRIDS[ch])
        for e in rows:
            vals = [bler_at(e, grid, s) for s in grid]
            assert vals[0] > 0.5 and vals[-1] < 0.1, (e["modulation"], e["code_rate"])
            # non-increasing up to Monte-Carlo noise (100 blocks per point)
            assert all(b <= a + 0.1 for a, b in zip(vals, vals[1:]))


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_select_mcs_rate_grows_with_snr(channel):
    choices = [select_mcs(s, channel) for s in np.arange(-10, 41, 1.0)]
    eff = [c.mcs.efficiency for c in choices if c.reliable]
    assert eff == sorted(eff)
    assert not choices[0].reliable  # -10 dB: nothing reaches 10% BLER
    top = select_mcs(40.0, channel)
    assert top.reliable and (top.modulation, round(top.code_rate, 3)) == ("64qam", 0.833)
    for c in choices:
        assert (c.bler < 0.1) == c.reliable


def test_select_mcs_awgn_is_far_from_rayleigh():
    a, r = select_mcs(10.0, "awgn"), select_mcs(10.0, "rayleigh")
    assert a.mcs.efficiency > r.mcs.efficiency  # block fading costs ~10 dB at 10% BLER
    with pytest.raises(BadInput):
        select_mcs(10.0, "rician")


def test_rayleigh_table_matches_its_monte_carlo_check():
    """The Rayleigh BLER used for selection (AWGN curve averaged over |h|^2) agrees with direct simulation."""
    tab = load_table()
    full = tab["num_blocks_per_point"]
    for e in (e for e in tab["entries"] if e["channel"] == "rayleigh"):
        pts = [(a, b) for a, b, n in zip(e["bler"], e["bler_mc"], e["blocks"]) if b is not None and n == full]
        assert len(pts) >= 3
        for semi, mc in pts:  # 100 blocks: std <= 0.05
            assert abs(semi - mc) <= 0.15, (e["modulation"], e["code_rate"], semi, mc)
