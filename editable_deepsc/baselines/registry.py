"""Data-oriented transmission methods by name (what ``edsc transmit --method`` dispatches to).

Each entry maps a method name to ``"module:function"``; the function takes
``(image, cbr=, channel=ChannelConfig, seed=, **options)`` and returns an object
with ``.image`` (1, 3, H, W) and ``.to_json()`` (see
:class:`editable_deepsc.baselines.jpeg_ldpc.TransmitResult`). Options a method
does not accept are dropped, so one CLI serves all methods. A learned method
(e.g. ``deepjscc``) is added with one line here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import torch

from editable_deepsc.errors import BadInput

TRANSMIT_METHODS: dict[str, str] = {
    "jpeg-ldpc": "editable_deepsc.baselines.jpeg_ldpc:transmit_jpeg_ldpc",
    "ideal": "editable_deepsc.baselines.jpeg_ldpc:transmit_ideal",
    "deepjscc": "editable_deepsc.baselines.deepjscc:transmit_deepjscc",
}


def get_method(name: str) -> Callable[..., Any]:
    """The transmit function registered as ``name``.

    Raises
    ------
    BadInput
        For an unknown method.
    """
    key = str(name).strip().lower()
    if key not in TRANSMIT_METHODS:
        raise BadInput(f"unknown method {name!r} (choose from: {', '.join(TRANSMIT_METHODS)})")
    module, attr = TRANSMIT_METHODS[key].split(":")
    return getattr(importlib.import_module(module), attr)


def transmit_image(image: torch.Tensor, method: str, **options: Any) -> Any:
    """Run method ``method`` on ``image`` with the ``options`` its function accepts.

    Options that are ``None`` are left at the function's default.

    Raises
    ------
    BadInput
        ``cbr`` outside (0, 1] (more symbols than the image has values).
    """
    cbr = options.get("cbr")
    if cbr is not None and (isinstance(cbr, bool) or not 0.0 < float(cbr) <= 1.0):
        raise BadInput(f"CBR must be in (0, 1], got {cbr!r}")
    fn = get_method(method)
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in options.items() if k in params and v is not None}
    return fn(image, **kwargs)


__all__ = ["TRANSMIT_METHODS", "get_method", "transmit_image"]
