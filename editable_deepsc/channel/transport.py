"""Transport blocks: segmentation of a bit stream into 5G-LDPC code blocks with a CRC each.

A transmission of ``num_symbols`` complex channel uses with a modulation of
``m`` bits per symbol and code rate ``r`` carries ``N = num_symbols·m`` coded
bits. :func:`plan_blocks` splits them into ``C`` code blocks (the fewest such
that no block exceeds the 5G maximum of 8448 information bits, or 3824 for
rates ≤ 1/3, which need base graph 2), as equal as possible in symbols. Block
``i`` has ``n_i = s_i·m`` coded bits and ``k_i = ⌊n_i·r⌋`` information bits, of
which the last 16 (``k_i ≤ 3824``: 5G's CRC16, ``x¹⁶+x¹²+x⁵+1``) or 24
(otherwise: 5G's CRC24B, ``x²⁴+x²³+x⁶+x⁵+x+1``) are the block's CRC, computed by
Sionna's :class:`~sionna.phy.fec.crc.CRCEncoder`. The receiver therefore knows
which blocks failed.

Both ends derive the same plan from ``(num_symbols, modulation, code_rate)``,
so nothing about the layout is sent. The payload is zero-padded to the plan's
capacity and the coded bits are scrambled by XOR with a fixed pseudo-random
sequence (seed :data:`SCRAMBLING_SEED`, like 5G's scrambling), so that padding
still gives random-looking, unit-power QAM symbols.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

from editable_deepsc.channel.ldpc import DEFAULT_DECODER, get_code
from editable_deepsc.channel.qam import MODULATIONS, canonical_modulation

SCRAMBLING_SEED = 0x5EED
MAX_K_BG1 = 8448
MAX_K_BG2 = 3824
MIN_BLOCK_PAYLOAD = 8  # a block must carry at least this many payload bits besides its CRC


def crc_name(k: int) -> str:
    """CRC polynomial used for a code block of ``k`` information bits (``"CRC16"`` or ``"CRC24B"``)."""
    return "CRC16" if k <= MAX_K_BG2 else "CRC24B"


def crc_length(k: int) -> int:
    """Number of CRC bits in a code block of ``k`` information bits."""
    return 16 if k <= MAX_K_BG2 else 24


@dataclass(frozen=True)
class CodeBlock:
    """One code block: ``k`` information bits (payload + CRC) → ``n`` coded bits."""

    k: int
    n: int
    crc: str

    @property
    def payload_bits(self) -> int:
        return self.k - crc_length(self.k)


@dataclass(frozen=True)
class BlockPlan:
    """How ``num_symbols`` channel uses are split into code blocks.

    Attributes
    ----------
    modulation : str
    bits_per_symbol : int
    code_rate : float
        Target rate; each block's actual rate ``k_i/n_i`` is at most this.
    num_symbols : int
        Complex channel uses the plan fills (``sum(n_i) / bits_per_symbol``).
    blocks : tuple of CodeBlock
        Empty when ``num_symbols`` is too small for a single block.
    """

    modulation: str
    bits_per_symbol: int
    code_rate: float
    num_symbols: int
    blocks: tuple[CodeBlock, ...]

    @property
    def payload_bits(self) -> int:
        """Bits of user payload the plan carries (CRC bits excluded)."""
        return sum(b.payload_bits for b in self.blocks)

    @property
    def coded_bits(self) -> int:
        return sum(b.n for b in self.blocks)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def to_json(self) -> dict:
        d = asdict(self)
        d["blocks"] = [[b.k, b.n, b.crc] for b in self.blocks]
        return d


def plan_blocks(num_symbols: int, modulation: str, code_rate: float) -> BlockPlan:
    """Split ``num_symbols`` channel uses into 5G-LDPC code blocks (see the module docstring).

    Parameters
    ----------
    num_symbols : int
        Complex channel uses available (≥ 0).
    modulation : str
        ``"bpsk"``, ``"qpsk"``, ``"16qam"`` or ``"64qam"``.
    code_rate : float
        In [1/4, 0.9].

    Returns
    -------
    BlockPlan
        With no blocks if even one block of ``MIN_BLOCK_PAYLOAD`` payload bits does not fit.
    """
    mod = canonical_modulation(modulation)
    m = MODULATIONS[mod][1]
    if not 0.2 <= code_rate <= 0.92:
        raise ValueError(f"code rate {code_rate} outside [0.2, 0.92]")
    num_symbols = max(0, int(num_symbols))
    k_max = MAX_K_BG1 if code_rate > 0.34 else MAX_K_BG2
    k_total = math.floor(num_symbols * m * code_rate)
    c = max(1, math.ceil(k_total / k_max))
    while True:
        base, extra = divmod(num_symbols, c)
        sizes = [base + 1] * extra + [base] * (c - extra)
        ks = [math.floor(s * m * code_rate) for s in sizes]
        if max(ks) <= k_max:
            break
        c += 1
    blocks = []
    for s, k in zip(sizes, ks):
        if k - crc_length(k) < MIN_BLOCK_PAYLOAD or k < 12:
            return BlockPlan(mod, m, float(code_rate), num_symbols, ())
        blocks.append(CodeBlock(k=k, n=s * m, crc=crc_name(k)))
    return BlockPlan(mod, m, float(code_rate), num_symbols, tuple(blocks))


@lru_cache(maxsize=32)
def _crc(name: str, k_payload: int):
    from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

    enc = CRCEncoder(name, k=k_payload)
    return enc, CRCDecoder(enc)


@lru_cache(maxsize=8)
def scrambling_sequence(n: int) -> np.ndarray:
    """The fixed scrambling bits (uint8, shape (n,)) shared by transmitter and receiver."""
    return np.random.default_rng(SCRAMBLING_SEED).integers(0, 2, size=n, dtype=np.uint8)


def _groups(plan: BlockPlan) -> dict[CodeBlock, list[int]]:
    groups: dict[CodeBlock, list[int]] = {}
    for i, b in enumerate(plan.blocks):
        groups.setdefault(b, []).append(i)
    return groups


def encode_payload(payload: np.ndarray, plan: BlockPlan) -> torch.Tensor:
    """CRC-attach, LDPC-encode and scramble a payload.

    Parameters
    ----------
    payload : ndarray, uint8, shape (L,), values in {0, 1}, ``L ≤ plan.payload_bits``
        Zero-padded to ``plan.payload_bits``.

    Returns
    -------
    Tensor, float32, shape (1, plan.coded_bits)
        Coded, scrambled bits in block order (each block a multiple of ``bits_per_symbol``).
    """
    payload = np.asarray(payload, dtype=np.uint8).ravel()
    cap = plan.payload_bits
    if payload.size > cap:
        raise ValueError(f"payload of {payload.size} bits exceeds the plan's capacity of {cap} bits")
    bits = np.zeros(cap, dtype=np.uint8)
    bits[: payload.size] = payload
    starts = np.cumsum([0] + [b.payload_bits for b in plan.blocks])
    coded: list[torch.Tensor | None] = [None] * plan.num_blocks
    for blk, idx in _groups(plan).items():
        u = torch.from_numpy(np.stack([bits[starts[i]: starts[i + 1]] for i in idx])).float()
        crc_enc, _ = _crc(blk.crc, blk.payload_bits)
        c = get_code(blk.k, blk.n, plan.bits_per_symbol).encode(crc_enc(u))
        for j, i in enumerate(idx):
            coded[i] = c[j]
    out = torch.cat(coded).numpy().astype(np.uint8) ^ scrambling_sequence(plan.coded_bits)
    return torch.from_numpy(out.astype(np.float32)).unsqueeze(0)


@dataclass
class DecodedPayload:
    """What the receiver's channel decoder recovers.

    Attributes
    ----------
    bits : ndarray, uint8, shape (plan.payload_bits,)
        Decoded payload (including padding), whatever the CRCs say.
    block_ok : ndarray, bool, shape (num_blocks,)
        CRC check of each block.
    """

    bits: np.ndarray
    block_ok: np.ndarray

    @property
    def all_ok(self) -> bool:
        return bool(self.block_ok.all())


def decode_payload(llr: torch.Tensor, plan: BlockPlan, decoder: str = DEFAULT_DECODER) -> DecodedPayload:
    """Descramble, LDPC-decode and CRC-check received LLRs.

    Parameters
    ----------
    llr : Tensor, float32, shape (plan.coded_bits,) or (1, plan.coded_bits)
        Channel LLRs, Sionna's sign (``ln P(1)/P(0)``).
    decoder : str
        See :data:`editable_deepsc.channel.ldpc.DECODERS`.
    """
    llr = llr.reshape(-1).to(torch.float32)
    if llr.numel() != plan.coded_bits:
        raise ValueError(f"expected {plan.coded_bits} LLRs, got {llr.numel()}")
    sign = 1.0 - 2.0 * torch.from_numpy(scrambling_sequence(plan.coded_bits).astype(np.float32))
    llr = llr * sign
    cstarts = np.cumsum([0] + [b.n for b in plan.blocks])
    out: list[np.ndarray | None] = [None] * plan.num_blocks
    ok = np.zeros(plan.num_blocks, dtype=bool)
    for blk, idx in _groups(plan).items():
        l_blk = torch.stack([llr[cstarts[i]: cstarts[i + 1]] for i in idx])
        u_hat = get_code(blk.k, blk.n, plan.bits_per_symbol).decode(l_blk, decoder)
        _, crc_dec = _crc(blk.crc, blk.payload_bits)
        payload, valid = crc_dec(u_hat.float())
        for j, i in enumerate(idx):
            out[i] = payload[j].round().to(torch.uint8).numpy()
            ok[i] = bool(valid[j].item())
    bits = np.concatenate(out) if out else np.zeros(0, dtype=np.uint8)
    return DecodedPayload(bits=bits, block_ok=ok)


__all__ = [
    "BlockPlan",
    "CodeBlock",
    "DecodedPayload",
    "SCRAMBLING_SEED",
    "crc_length",
    "crc_name",
    "decode_payload",
    "encode_payload",
    "plan_blocks",
    "scrambling_sequence",
]
