"""Load the converted face-api weights from the zoo.

``scripts/convert_faceapi.py`` stores each net as safetensors in PyTorch layout. Tensors that
face-api ships uint8-quantised stay uint8 (``q``) next to two float64 scalars ``<name>.qscale`` and
``<name>.qmin``; they are dequantised here exactly as tfjs does (``q * scale + min`` in double
precision, rounded to float32), so the PyTorch ports see bit-identical weights.
"""

from __future__ import annotations

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.zoo.registry import ModelCard

QSCALE_SUFFIX = ".qscale"
QMIN_SUFFIX = ".qmin"

ZOO_NAMES: dict[str, str] = {
    "recognition": "faceapi-recognition",
    "landmarks": "faceapi-landmark68",
    "expression": "faceapi-expression",
    "age_gender": "faceapi-age-gender",
    "detector": "faceapi-tiny-face-detector",
}
"""Net → zoo model name."""


def dequantize_state(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn a stored (partly uint8) state dict into float32 tensors.

    Parameters
    ----------
    stored : dict of str to torch.Tensor
        uint8 tensors with ``.qscale``/``.qmin`` float64 scalars, and float32 tensors.

    Returns
    -------
    dict of str to torch.Tensor
        Every parameter as float32, quantisation entries removed.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in stored.items():
        if key.endswith((QSCALE_SUFFIX, QMIN_SUFFIX)):
            continue
        if value.dtype == torch.uint8:
            try:
                scale, minimum = stored[key + QSCALE_SUFFIX], stored[key + QMIN_SUFFIX]
            except KeyError:
                raise CheckpointError(f"quantised tensor {key!r} has no scale/min") from None
            value = (value.double() * scale.double() + minimum.double()).float()
        out[key] = value.float()
    return out


def faceapi_state_from_card(card: ModelCard, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Zoo builder of kind ``face-net``: the dequantised float32 state dict (the nets are built by their modules)."""
    return dequantize_state(state)


def load_faceapi_state(net: str) -> dict[str, torch.Tensor]:
    """Load the float32 state dict of face-api net ``net`` (a key of :data:`ZOO_NAMES`)."""
    from editable_deepsc.zoo import loader

    if net not in ZOO_NAMES:
        raise CheckpointError(f"unknown face-api net {net!r} (known: {', '.join(ZOO_NAMES)})")
    return loader.load(ZOO_NAMES[net], kind="face-net")


def load_into(module: torch.nn.Module, net: str) -> torch.nn.Module:
    """Load face-api weights into ``module`` (strict), freeze them, switch to eval; return it."""
    state = load_faceapi_state(net)
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"weights of {ZOO_NAMES[net]} do not fit {type(module).__name__}: "
            f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
        )
    module.requires_grad_(False)
    return module.eval()
