"""Decode throughput of the LDPC decoders on the same code and the same noisy words (``edsc bench ldpc``)."""

from __future__ import annotations

import time

import torch

from editable_deepsc.channel.digital import send_bits
from editable_deepsc.channel.ldpc import DECODERS, check_decoder, get_code
from editable_deepsc.channel.mcs import MCS, code_length
from editable_deepsc.channel.qam import canonical_modulation
from editable_deepsc.rng import make_generator


def bench_decoders(
    k: int = 1024,
    code_rate: float = 0.5,
    modulation: str = "qpsk",
    snr_db: float = 1.5,
    num_blocks: int = 100,
    decoders: tuple[str, ...] = DECODERS,
    channel: str = "awgn",
    seed: int = 0,
    batch: int = 50,
) -> dict:
    """Time each decoder on identical LLRs; return throughputs and ratios.

    Parameters
    ----------
    k : int
        Information bits per code block.
    code_rate, modulation : float, str
        The code is the 5G-LDPC code of ``k`` bits rate-matched to rate ``code_rate``.
    snr_db : float
        Channel SNR; the default 1.5 dB puts QPSK rate 1/2 in its waterfall.
    num_blocks : int
        Blocks decoded by every decoder (in batches of ``batch``).
    decoders : tuple of str
        The first one is the reference of the ratios.

    Returns
    -------
    dict
        ``{"code": ..., "results": [{"decoder", "seconds", "info_bits_per_s", "bler", "ber",
        "ratio_vs_<ref>", "same_bits_as_<ref>"}, ...]}``.
    """
    decoders = tuple(check_decoder(d) for d in decoders)
    mod = canonical_modulation(modulation)
    mcs = MCS(mod, float(code_rate))
    n = code_length(mcs, k)
    code = get_code(k, n, mcs.bits_per_symbol)
    rng = make_generator(seed)
    u = torch.randint(0, 2, (num_blocks, k), generator=rng)
    llr = send_bits(code.encode(u), mod, channel, snr_db, rng=rng).llr
    # warm-up (builds the decoders; not timed)
    for d in decoders:
        code.decode(llr[:1], d)
    ref_name = decoders[0]
    outs, rows = {}, []
    for d in decoders:
        t0 = time.perf_counter()
        parts = [code.decode(llr[i: i + batch], d) for i in range(0, num_blocks, batch)]
        dt = time.perf_counter() - t0
        u_hat = torch.cat(parts)
        outs[d] = u_hat
        wrong = u_hat != u.to(torch.uint8)
        rows.append({"decoder": d, "seconds": round(dt, 4), "info_bits_per_s": num_blocks * k / dt,
                     "bler": float(wrong.any(1).float().mean()), "ber": float(wrong.float().mean())})
    ref = rows[0]
    for r in rows:
        r[f"ratio_vs_{ref_name}"] = r["info_bits_per_s"] / ref["info_bits_per_s"]
        r[f"same_bits_as_{ref_name}"] = float((outs[r["decoder"]] == outs[ref_name]).all(1).float().mean())
    return {
        "code": {"k": k, "n": n, "rate": k / n, "modulation": mod, "lifting_z": code.encoder.z,
                 "pcm_shape": list(code.pcm.shape), "num_iter": code.num_iter},
        "channel": channel, "snr_db": snr_db, "num_blocks": num_blocks, "batch": batch, "seed": seed,
        "torch_threads": torch.get_num_threads(), "results": rows,
    }


__all__ = ["bench_decoders"]
