"""Gray-labelled BPSK / QPSK / 16-QAM / 64-QAM mapping and soft demapping (wraps Sionna).

The maths lives in :mod:`sionna.phy.mapping` (``Constellation``, ``Mapper``,
``Demapper``); this module only fixes the names, dtypes and shapes used in this
package. BPSK is Sionna's 1-bit ``"pam"`` constellation (points ±1 on the real
axis); the QAM orders are Sionna's ``"qam"`` constellations, Gray labelled and
normalised to unit average energy.

LLR sign convention
-------------------
Sionna (and therefore :meth:`Modulation.demap`) returns **logits**:

.. math::  \\mathrm{LLR}(b_i) = \\ln \\frac{P(b_i = 1 \\mid y)}{P(b_i = 0 \\mid y)},

so a positive LLR means "bit is 1". Sionna's LDPC decoders take the same
convention. The textbook convention used by the C++ ``ldpc`` package
(``log((1 - p) / p)`` with ``p`` the probability of a flip, i.e.
:math:`\\ln P(0)/P(1)` for a received 0) is the opposite sign;
:mod:`editable_deepsc.channel.ldpc` converts at that boundary only.

>>> import torch
>>> from editable_deepsc.channel.qam import Modulation
>>> mod = Modulation("16qam")
>>> x = mod.map(torch.randint(0, 2, (2, 8)))
>>> x.shape, x.dtype
(torch.Size([2, 2]), torch.complex64)
"""

from __future__ import annotations

import torch

from editable_deepsc.errors import BadInput

# name -> (Sionna constellation type, bits per symbol)
MODULATIONS: dict[str, tuple[str, int]] = {
    "bpsk": ("pam", 1),
    "qpsk": ("qam", 2),
    "16qam": ("qam", 4),
    "64qam": ("qam", 6),
}

_ALIASES = {"4qam": "qpsk", "qam16": "16qam", "qam64": "64qam", "16-qam": "16qam", "64-qam": "64qam"}


def canonical_modulation(name: str) -> str:
    """Return the canonical modulation name (``"bpsk"``, ``"qpsk"``, ``"16qam"``, ``"64qam"``).

    Raises
    ------
    BadInput
        For an unknown name.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in MODULATIONS:
        raise BadInput(f"unknown modulation {name!r} (choose from: {', '.join(MODULATIONS)})")
    return key


class Modulation:
    """A named Gray constellation with unit average symbol energy.

    Parameters
    ----------
    name : str
        ``"bpsk"``, ``"qpsk"``, ``"16qam"`` or ``"64qam"``.
    demapping : str
        ``"app"`` (exact a-posteriori LLRs, default) or ``"maxlog"``.
    device : str
        Torch device for the Sionna blocks.

    Attributes
    ----------
    name : str
    bits_per_symbol : int
        1, 2, 4 or 6.
    """

    def __init__(self, name: str, demapping: str = "app", device: str = "cpu"):
        from sionna.phy.mapping import Constellation, Demapper, Mapper

        self.name = canonical_modulation(name)
        if demapping not in ("app", "maxlog"):
            raise BadInput(f"unknown demapping method {demapping!r} (choose from: app, maxlog)")
        self.demapping = demapping
        kind, m = MODULATIONS[self.name]
        self.bits_per_symbol = m
        const = Constellation(kind, m, normalize=True, precision="single", device=device)
        self._mapper = Mapper(constellation=const, precision="single", device=device)
        self._demapper = Demapper(demapping, constellation=const, precision="single", device=device)
        self._hard = Demapper("maxlog", constellation=const, hard_out=True, precision="single", device=device)
        self.points = const().detach().clone()
        """Tensor, complex64, shape (2**m,): constellation points, index = Gray label read MSB first."""

    def __repr__(self) -> str:
        return f"Modulation({self.name!r}, demapping={self.demapping!r})"

    def _check_bits(self, bits: torch.Tensor) -> torch.Tensor:
        if bits.dim() != 2 or bits.shape[-1] % self.bits_per_symbol:
            raise BadInput(
                f"bits must have shape (N, n*{self.bits_per_symbol}) for {self.name}, got {tuple(bits.shape)}"
            )
        return bits

    def map(self, bits: torch.Tensor) -> torch.Tensor:
        """Map bits to symbols.

        Parameters
        ----------
        bits : Tensor, float32 / uint8 / int, shape (N, n·m), values in {0, 1}
            Bits, most significant first within each symbol.

        Returns
        -------
        Tensor, complex64, shape (N, n)
            Symbols with unit average energy over the constellation.
        """
        bits = self._check_bits(bits)
        return self._mapper(bits.to(torch.int32)).to(torch.complex64)

    def demap(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        """Soft demapping to bit LLRs (Sionna's sign: ``ln P(b=1|y)/P(b=0|y)``).

        Parameters
        ----------
        y : Tensor, complex64, shape (N, n)
            Received (equalised) symbols.
        no : float or Tensor
            Noise variance per complex symbol; a tensor broadcastable to (N, n)
            gives per-symbol variances (e.g. ``no / |h|**2`` after zero-forcing).

        Returns
        -------
        Tensor, float32, shape (N, n·m)
        """
        no_t = torch.as_tensor(no, dtype=torch.float32, device=y.device)
        if no_t.dim() > 0:
            no_t = no_t.expand(y.shape).contiguous()
        return self._demapper(y.to(torch.complex64), no_t).to(torch.float32)

    def hard(self, y: torch.Tensor) -> torch.Tensor:
        """Nearest-point (hard) decisions.

        Parameters
        ----------
        y : Tensor, complex64, shape (N, n)

        Returns
        -------
        Tensor, uint8, shape (N, n·m)
        """
        bits = self._hard(y.to(torch.complex64), torch.tensor(1.0))
        return bits.round().to(torch.uint8)
