"""5G-NR LDPC codes (Sionna's encoder with rate matching) and two belief-propagation decoders.

One :class:`LDPC5GCode` wraps :class:`sionna.phy.fec.ldpc.LDPC5GEncoder` for a
given number of information bits ``k`` and rate-matched length ``n`` (base
graph, lifting size, filler bits, puncturing of the first ``2Z`` systematic
bits and the bit interleaver for ``bits_per_symbol`` all follow TS 38.212 as
implemented by Sionna). It decodes with one of :data:`DECODERS`:

``"cpp"`` (default)
    The C++ BP decoder of the PyPI package ``ldpc`` (``ldpc.bp_decoder.BpDecoder``,
    product-sum, flooding schedule, stops as soon as the syndrome is satisfied)
    on the *same* parity-check matrix, taken from Sionna's encoder.
``"sionna"``
    Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` (``"boxplus-phi"``
    product-sum, flooding, always ``num_iter`` iterations).
``"cpp-minsum"``
    The C++ decoder with normalised min-sum (scaling 0.75): faster, ≈0.1–0.3 dB
    worse; offered for speed, never the default.

``tests/test_ldpc.py`` checks that ``"cpp"`` and ``"sionna"`` return the same
bits on the same noisy words, which is why ``"cpp"`` (several times faster,
see ``edsc bench ldpc``) is the default.

How the C++ decoder sees the 5G code
------------------------------------
Both decoders run on the lifted parity-check matrix ``H`` of Sionna's encoder
with the trailing punctured degree-1 parity nodes (and their checks) pruned,
exactly as :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` prunes them. The channel
LLRs of the ``n`` transmitted bits are de-interleaved and placed into the
mother codeword of length ``n_ldpc``: the ``2Z`` always-punctured systematic
bits and the rate-matching-punctured parity bits get LLR 0 (no information),
the filler bits (known zeros) get ``-llr_max`` (certainly 0 in Sionna's sign).

The ``ldpc`` package decodes *syndromes* with per-bit flip probabilities, and
uses the opposite LLR sign (``ln P(0)/P(1)``, see :mod:`editable_deepsc.channel.qam`).
A soft word is turned into that form without loss: hard decisions
``r = [L > 0]``, flip probabilities ``p = 1 / (1 + exp(|L|))``, syndrome
``s = H r``; BP finds the most likely error ``e`` with ``H e = s`` and the
codeword is ``r ⊕ e``. Because BP on a binary linear code is symmetric under
this change of variables, the messages are the same as BP on ``L`` directly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import torch

from editable_deepsc.errors import BadInput

DECODERS: tuple[str, ...] = ("cpp", "sionna", "cpp-minsum")
DEFAULT_DECODER = "cpp"
NUM_ITER = 20
LLR_MAX = 20.0
MINSUM_SCALING = 0.75


def check_decoder(name: str) -> str:
    """Return the canonical decoder name or raise :class:`BadInput`."""
    key = str(name).strip().lower()
    if key not in DECODERS:
        raise BadInput(f"unknown LDPC decoder {name!r} (choose from: {', '.join(DECODERS)})")
    return key


class LDPC5GCode:
    """A rate-matched 5G-NR LDPC code with ``k`` information bits and ``n`` coded bits.

    Parameters
    ----------
    k : int
        Information bits per codeword (``12 ≤ k ≤ 8448``; ``k ≤ 3824`` when ``k/n ≤ 1/3``).
    n : int
        Transmitted (rate-matched) bits per codeword, ``1/5 ≤ k/n ≤ 0.95``; a
        multiple of ``bits_per_symbol``.
    bits_per_symbol : int or None
        Modulation order for the 5G bit interleaver; ``None`` skips interleaving.
    num_iter : int
        Maximum BP iterations (the C++ decoder stops early on a valid codeword).
    llr_max : float
        Clipping of channel LLRs and of Sionna's internal messages.

    Attributes
    ----------
    pcm : scipy.sparse.csr_matrix, uint8, shape (m_pruned, n_pruned)
        Pruned parity-check matrix both decoders use.
    """

    def __init__(self, k: int, n: int, bits_per_symbol: int | None = None, num_iter: int = NUM_ITER,
                 llr_max: float = LLR_MAX):
        from sionna.phy.fec.ldpc import LDPC5GEncoder

        if k < 12 or n <= k:
            raise BadInput(f"invalid LDPC code size k={k}, n={n} (need 12 <= k < n)")
        try:
            self.encoder = LDPC5GEncoder(int(k), int(n), num_bits_per_symbol=bits_per_symbol)
        except (ValueError, AssertionError) as e:
            raise BadInput(f"unsupported 5G LDPC code k={k}, n={n}: {e}") from None
        self.k, self.n = int(k), int(n)
        self.bits_per_symbol = bits_per_symbol
        self.num_iter = int(num_iter)
        self.llr_max = float(llr_max)
        enc = self.encoder
        # prune trailing punctured degree-1 variable nodes as LDPC5GDecoder does
        pcm = sp.csr_matrix(enc.pcm, dtype=np.uint8)
        dv = np.asarray(pcm.sum(axis=0)).ravel()
        last_pos = enc.n_ldpc
        for idx in range(enc.n_ldpc - 1, 0, -1):
            if dv[idx] == 1:
                last_pos = idx
            else:
                break
        n_punct = (enc.n_ldpc - enc.k_filler) - enc.n - 2 * enc.z
        self.n_pruned = int(max(last_pos, enc.n_ldpc - n_punct))
        cut = enc.n_ldpc - self.n_pruned
        self.pcm = pcm[: pcm.shape[0] - cut, : self.n_pruned].tocsr() if cut > 0 else pcm
        self._sionna = None
        self._cpp: dict[str, object] = {}

    @property
    def rate(self) -> float:
        """Code rate ``k / n``."""
        return self.k / self.n

    def __repr__(self) -> str:
        return f"LDPC5GCode(k={self.k}, n={self.n}, z={self.encoder.z}, pcm={self.pcm.shape})"

    # ------------------------------------------------------------------ encoding
    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Encode information bits.

        Parameters
        ----------
        bits : Tensor, shape (B, k), values in {0, 1} (any real or integer dtype)

        Returns
        -------
        Tensor, float32, shape (B, n)
            Rate-matched (and interleaved, if ``bits_per_symbol`` is set) codewords.
        """
        if bits.dim() != 2 or bits.shape[1] != self.k:
            raise BadInput(f"LDPC encoder expects bits of shape (B, {self.k}), got {tuple(bits.shape)}")
        return self.encoder(bits.to(torch.float32)).to(torch.float32)

    # ------------------------------------------------------------------ decoding
    def mother_llrs(self, llr: torch.Tensor) -> np.ndarray:
        """Place channel LLRs into the pruned mother codeword (Sionna's sign).

        Parameters
        ----------
        llr : Tensor, float32, shape (B, n)
            ``ln P(1)/P(0)`` of the transmitted bits.

        Returns
        -------
        ndarray, float64, shape (B, n_pruned)
            Punctured positions 0, filler bits ``-llr_max``, everything clipped to ``±llr_max``.
        """
        enc = self.encoder
        llr = llr.detach().to(torch.float64).reshape(-1, self.n)
        if self.bits_per_symbol is not None:
            llr = llr[:, enc.out_int_inv]
        b = llr.shape[0]
        z, k = enc.z, self.k
        n_sys = k - 2 * z  # transmitted systematic bits
        rest = self.n_pruned - enc.k_ldpc  # parity positions kept after pruning
        out = np.zeros((b, self.n_pruned), dtype=np.float64)
        l_np = llr.clamp(-self.llr_max, self.llr_max).cpu().numpy()
        out[:, 2 * z: k] = l_np[:, :n_sys]
        out[:, k: enc.k_ldpc] = -self.llr_max
        n_par = min(rest, self.n - n_sys)
        out[:, enc.k_ldpc: enc.k_ldpc + n_par] = l_np[:, n_sys: n_sys + n_par]
        return out

    def decode(self, llr: torch.Tensor, decoder: str = DEFAULT_DECODER) -> torch.Tensor:
        """Decode channel LLRs to information bits.

        Parameters
        ----------
        llr : Tensor, float32, shape (B, n)
            Channel LLRs in Sionna's sign, ``ln P(b=1|y) / P(b=0|y)``.
        decoder : str
            One of :data:`DECODERS`.

        Returns
        -------
        Tensor, uint8, shape (B, k)
            Hard decisions on the information bits.
        """
        decoder = check_decoder(decoder)
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise BadInput(f"LDPC decoder expects LLRs of shape (B, {self.n}), got {tuple(llr.shape)}")
        if decoder == "sionna":
            return self._decode_sionna(llr)
        return self._decode_cpp(llr, minsum=decoder == "cpp-minsum")

    def _decode_sionna(self, llr: torch.Tensor) -> torch.Tensor:
        if self._sionna is None:
            from sionna.phy.fec.ldpc import LDPC5GDecoder

            self._sionna = LDPC5GDecoder(self.encoder, cn_update="boxplus-phi", num_iter=self.num_iter,
                                         llr_max=self.llr_max, hard_out=True, return_infobits=True)
        with torch.no_grad():
            u = self._sionna(llr.to(torch.float32).clamp(-self.llr_max, self.llr_max))
        return u.round().to(torch.uint8)

    def _cpp_decoder(self, minsum: bool):
        key = "minsum" if minsum else "product_sum"
        if key not in self._cpp:
            from ldpc.bp_decoder import BpDecoder

            self._cpp[key] = BpDecoder(
                self.pcm, error_rate=0.1, max_iter=self.num_iter,
                bp_method="minimum_sum" if minsum else "product_sum",
                ms_scaling_factor=MINSUM_SCALING if minsum else 1.0,
                schedule="parallel", input_vector_type="syndrome", omp_thread_count=1,
            )
        return self._cpp[key]

    def _decode_cpp(self, llr: torch.Tensor, minsum: bool) -> torch.Tensor:
        bpd = self._cpp_decoder(minsum)
        mother = self.mother_llrs(llr)
        hard = (mother > 0).astype(np.uint8)
        # probability that the hard decision is wrong; |L| <= llr_max keeps it > 0
        p_flip = 1.0 / (1.0 + np.exp(np.abs(mother)))
        syndromes = (self.pcm @ hard.T).T % 2
        out = np.empty((mother.shape[0], self.k), dtype=np.uint8)
        for i in range(mother.shape[0]):
            s = syndromes[i].astype(np.uint8)
            if not s.any():
                out[i] = hard[i, : self.k]
                continue
            bpd.update_channel_probs(p_flip[i])
            e = np.asarray(bpd.decode(s), dtype=np.uint8)
            out[i] = hard[i, : self.k] ^ e[: self.k]
        return torch.from_numpy(out)


@lru_cache(maxsize=64)
def get_code(k: int, n: int, bits_per_symbol: int | None = None, num_iter: int = NUM_ITER) -> LDPC5GCode:
    """Memoised :class:`LDPC5GCode` (building one takes ~0.1 s; a transmission reuses one or two sizes)."""
    return LDPC5GCode(k, n, bits_per_symbol=bits_per_symbol, num_iter=num_iter)


__all__ = ["DECODERS", "DEFAULT_DECODER", "LDPC5GCode", "check_decoder", "get_code"]
