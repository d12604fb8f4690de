"""Built-in semantic codecs by name: export to the zoo and :func:`load_codec`.

A trained :class:`~editable_deepsc.channel.codec.SemanticCodec` is stored as
one safetensors file (network weights and PCA axes in float16, so that each
codec stays at 1.7-3.1 MB; the latent mean and spreads stay float32) and a zoo card whose ``config`` holds the
:class:`~editable_deepsc.channel.codec.CodecConfig` fields plus the generator
the codec serves::

    {"num_ws": 5, "w_dim": 100, "k": 128, "hidden": 256, "depth": 2, "snr_aware": true,
     "generator": "edsc-faces64", "generator_sha256": "...", "image_size": 64, "cbr": 0.0104, ...}

The same config is written into the safetensors metadata, so a codec can also
be loaded from a bare path.

>>> from editable_deepsc.channel import load_codec
>>> codec = load_codec("edsc-codec-faces64-k128")          # doctest: +SKIP
>>> codec = load_codec(DEFAULT_CODEC, generator=gen)        # checks that it serves ``gen``  # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.channel.codec import CodecConfig, SemanticCodec
from editable_deepsc.errors import CheckpointError
from editable_deepsc.zoo import registry
from editable_deepsc.zoo.sets import load_set

#: The codec of the default model set (``edsc-codec-faces64-k128``: k = 128, CBR 1/96 at 64x64).
DEFAULT_CODEC: str = load_set().codec()
#: k values of the shipped codecs (complex channel uses per latent).
BUILTIN_KS: tuple[int, ...] = (32, 64, 128, 250)
CODEC_FORMAT = "edsc-semantic-codec"
_FP32_KEYS = ("pca.mean", "pca.std", "scale_")  # latent mean/spread and the scale-symbol calibration stay float32


def codec_name(generator_name: str, k: int) -> str:
    """Zoo name of the codec for ``generator_name`` with ``k`` symbols, e.g. ``edsc-codec-faces64-k128``."""
    short = generator_name[len("edsc-") :] if generator_name.startswith("edsc-") else generator_name
    return f"edsc-codec-{short}-k{int(k)}"


def cbr(k: int, image_size: int, channels: int = 3) -> float:
    """Channel bandwidth ratio ``k / (H·W·C)`` (complex channel uses per real source value)."""
    return float(k) / float(image_size * image_size * channels)


def _storage_state(codec: SemanticCodec, half: bool) -> dict[str, torch.Tensor]:
    out = {}
    for key, v in codec.state_dict().items():
        keep = not half or any(key.startswith(p) for p in _FP32_KEYS) or not v.is_floating_point()
        out[key] = v.detach().float() if keep else v.detach().half()
    return out


def export_codec(
    codec: SemanticCodec,
    name: str,
    generator_name: str,
    image_size: int,
    source: str,
    extra_config: dict[str, Any] | None = None,
    generator_sha256: str | None = None,
    half: bool = True,
    weights_dir: Path | None = None,
    cards_dir: Path | None = None,
) -> Path:
    """Write ``codec`` to the zoo as ``<name>.safetensors`` and register its card.

    Parameters
    ----------
    codec : SemanticCodec
        Trained codec (its PCA fitted).
    name : str
        Zoo name (see :func:`codec_name`).
    generator_name : str
        Registry name of the generator whose W+ the codec was trained on.
    image_size : int
        Side of that generator's images (for the CBR on the card).
    source : str
        How the weights were made (the training command).
    extra_config : dict, optional
        More fields for the card's ``config`` (training hyper-parameters, ...).
    generator_sha256 : str, optional
        Digest of the generator's weights the codec was trained with (default: the zoo's digest
        of ``generator_name``, ``None`` for a generator outside the zoo).
    half : bool
        Store the network weights and PCA axes as float16 (mean, spreads and
        scale calibration stay float32).
    weights_dir, cards_dir : Path, optional
        Override the zoo directories (tests).

    Returns
    -------
    Path
        The safetensors file written.
    """
    config = {
        **codec.config.to_json(),
        "generator": generator_name,
        "generator_sha256": generator_sha256 or registry.sha256_of(generator_name),
        "image_size": int(image_size),
        "cbr": cbr(codec.k, image_size),
        **(extra_config or {}),
    }
    return registry.publish(
        name,
        _storage_state(codec, half),
        metadata={"format": CODEC_FORMAT, "config": json.dumps(config)},
        weights_dir=weights_dir,
        cards_dir=Path(cards_dir or registry.CARDS_DIR),
        absolute_file=weights_dir is not None,
        kind="codec",
        licence="MIT (trained by this project)",
        source=source,
        resolution=int(image_size),
        description=f"SNR-aware semantic channel codec: {generator_name} W+ -> {codec.k} complex symbols "
        f"(CBR {config['cbr']:.5f}), AWGN+Rayleigh, SNR 0-20 dB",
        config=config,
    )


def _check_generator(config: dict[str, Any], generator: Any, label: str) -> None:
    if generator is None:
        return
    want = config.get("generator")
    if isinstance(generator, str):
        if want is not None and generator != want:
            raise CheckpointError(f"codec {label} was trained for generator {want!r}, not {generator!r}")
        return
    num_ws, w_dim = getattr(generator, "num_ws", None), getattr(generator, "w_dim", None)
    if (num_ws, w_dim) != (config["num_ws"], config["w_dim"]):
        raise CheckpointError(
            f"codec {label} expects latents ({config['num_ws']}, {config['w_dim']}) "
            f"but the generator has ({num_ws}, {w_dim})"
        )
    name = getattr(generator, "name", None)
    if want is not None and name is not None and name != want:
        raise CheckpointError(f"codec {label} was trained for generator {want!r}, not {name!r}")
    _warn_if_stale(config, label)


def _warn_if_stale(config: dict[str, Any], label: str) -> None:
    """Warn when the generator's registered weights are not those the codec was trained with."""
    want_sha, gen_name = config.get("generator_sha256"), config.get("generator")
    if not want_sha or not gen_name:
        return
    try:
        have = registry.card(gen_name).sha256
    except CheckpointError:
        return
    if have != want_sha:
        warnings.warn(
            f"codec {label} was trained with other {gen_name} weights (sha256 {want_sha[:12]}…, zoo has "
            f"{have[:12]}…); retrain it with `edsc train codec`",
            stacklevel=3,
        )


def load_codec(
    name_or_path: str | Path = DEFAULT_CODEC,
    generator: Any = None,
    device: str | torch.device = "cpu",
) -> SemanticCodec:
    """Load a semantic codec by zoo name or safetensors path (sha256-checked when registered).

    Parameters
    ----------
    name_or_path : str or Path
        Zoo name (e.g. ``"edsc-codec-faces64-k128"``) or a ``.safetensors`` path
        written by :func:`export_codec`.
    generator : StyleGenerator or str, optional
        The generator (or its registry name) the codec must serve; a different
        name or latent shape raises :class:`CheckpointError`.
    device : str or torch.device

    Returns
    -------
    SemanticCodec
        In eval mode, float32, gradients off.

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, sha256 mismatch, not a codec,
        tensors of the wrong shape, or a codec trained for another generator.
    """
    from editable_deepsc.zoo import loader

    codec = loader.load(name_or_path, kind="codec")
    _check_generator(codec.card_config, generator, codec.label)
    return codec.to(device).eval().requires_grad_(False)


def codec_from_card(card: registry.ModelCard, state: dict[str, torch.Tensor]) -> SemanticCodec:
    """Zoo builder of kind ``codec``: a :class:`SemanticCodec` from its card's config and tensors.

    The card's config (also in the file's metadata) is kept as ``codec.card_config``.
    """
    from editable_deepsc.zoo.loader import fit_state

    config = dict(card.config)
    label = Path(card.name).name
    try:
        cfg = CodecConfig(
            **{k: config[k] for k in ("num_ws", "w_dim", "k", "hidden", "depth", "snr_aware")},
            **{k: config[k] for k in ("linear_skip", "basis", "keep", "diagonal") if k in config},
        )
    except KeyError as e:
        raise CheckpointError(f"codec {label}: config lacks {e.args[0]!r}") from None
    codec = fit_state(SemanticCodec(cfg), state, f"codec {label}")
    codec.card_config, codec.label = config, label
    return codec.eval().requires_grad_(False)
