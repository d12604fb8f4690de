"""SNR conventions.

All channels in this package use unit average symbol power (see
:func:`~editable_deepsc.channel.power.normalize_power`) and complex noise of
variance ``no`` per symbol, so

.. math::  \\mathrm{SNR} = \\frac{E_s}{N_0} = \\frac{1}{N_0}, \\qquad N_0 = 10^{-\\mathrm{SNR_{dB}}/10}.

For coded digital links, :func:`ebno_to_no` converts :math:`E_b/N_0` to
:math:`N_0` for a modulation with ``bits_per_symbol`` bits and code rate ``r``:
:math:`E_s/N_0 = E_b/N_0 \\cdot r \\cdot m`.
"""

from __future__ import annotations

import math

import torch

from editable_deepsc.errors import BadInput

SNR_RANGE_DB: tuple[float, float] = (-10.0, 40.0)
"""SNRs (dB) accepted from users; outside this range results are meaningless here."""


def check_snr(snr_db: float) -> float:
    """Validate a user-supplied SNR in dB and return it as a float.

    Raises
    ------
    BadInput
        If ``snr_db`` is not a finite number in :data:`SNR_RANGE_DB`.
    """
    if isinstance(snr_db, bool):  # JSON true/false would pass float() as 1/0 dB
        raise BadInput(f"SNR must be a number in dB, got {snr_db!r}")
    try:
        v = float(snr_db)
    except (TypeError, ValueError):
        raise BadInput(f"SNR must be a number in dB, got {snr_db!r}") from None
    lo, hi = SNR_RANGE_DB
    if not math.isfinite(v) or not lo <= v <= hi:
        raise BadInput(f"SNR {snr_db} dB is outside the supported range [{lo:g}, {hi:g}] dB")
    return v


def snr_to_no(snr_db: float | torch.Tensor) -> float | torch.Tensor:
    """Noise variance per complex symbol for unit-power symbols: ``no = 10**(-snr_db/10)``.

    Parameters
    ----------
    snr_db : float or Tensor
        SNR in dB (any shape).

    Returns
    -------
    float or Tensor
        ``no`` with the same shape/type as ``snr_db``.
    """
    if isinstance(snr_db, torch.Tensor):
        return torch.pow(10.0, -snr_db / 10.0)
    return 10.0 ** (-float(snr_db) / 10.0)


def no_to_snr(no: float) -> float:
    """Inverse of :func:`snr_to_no` (dB)."""
    return -10.0 * math.log10(no)


def ebno_to_no(ebno_db: float, bits_per_symbol: int, code_rate: float = 1.0) -> float:
    """Noise variance per complex symbol for a given :math:`E_b/N_0` (unit symbol energy)."""
    esno_db = ebno_db + 10.0 * math.log10(bits_per_symbol * code_rate)
    return snr_to_no(esno_db)
