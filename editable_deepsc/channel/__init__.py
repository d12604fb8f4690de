"""Channels, SNR conventions, power normalisation and modulation.

Conventions (DESIGN.md §4): channel symbols are complex64 tensors of shape
(N, k) with unit average power per sample; noise variance per complex symbol
is ``no = 10**(-snr_db/10)``; Rayleigh gains are ``h ~ CN(0, 1)`` per block,
known to the receiver (coherent equalisation) unless stated.

>>> import torch
>>> from editable_deepsc.channel import AWGN, normalize_power, snr_to_no
>>> x = normalize_power(torch.randn(4, 128, dtype=torch.complex64))
>>> y = AWGN()(x, snr_to_no(6.0), rng=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from editable_deepsc.channel.awgn import AWGN, complex_noise
from editable_deepsc.channel.codec_zoo import DEFAULT_CODEC, load_codec
from editable_deepsc.channel.config import CHANNELS, ChannelConfig, make_channel
from editable_deepsc.channel.power import average_power, complex_to_real, normalize_power, real_to_complex
from editable_deepsc.channel.rayleigh import RayleighBlockFading
from editable_deepsc.channel.snr import SNR_RANGE_DB, check_snr, ebno_to_no, no_to_snr, snr_to_no

__all__ = [
    "AWGN",
    "CHANNELS",
    "ChannelConfig",
    "DEFAULT_CODEC",
    "RayleighBlockFading",
    "SNR_RANGE_DB",
    "average_power",
    "check_snr",
    "complex_noise",
    "complex_to_real",
    "ebno_to_no",
    "load_codec",
    "make_channel",
    "no_to_snr",
    "normalize_power",
    "real_to_complex",
    "snr_to_no",
]
