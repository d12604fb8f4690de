"""Resumable training state as safetensors (no pickle): modules, Adam moments, counters.

Used through :class:`editable_deepsc.train.loop.ResumableRun` by the generator, encoder, codec and DeepJSCC trainers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from editable_deepsc.errors import CheckpointError
from editable_deepsc.zoo.registry import save_state_dict


def save_training_state(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    counters: dict[str, float | int],
) -> None:
    """Write modules, optimiser state and counters (e.g. ``step``, ``seconds``) to one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"module.{name}.{k}"] = v
    for name, opt in optimizers.items():
        for idx, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                tensors[f"optim.{name}.{idx}.{k}"] = torch.as_tensor(v)
    save_state_dict(tensors, path, metadata={"counters": json.dumps(counters)})


def load_training_state(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, float | int]:
    """Restore what :func:`save_training_state` wrote into ``modules``/``optimizers``; return the counters."""
    from safetensors import safe_open

    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            counters = json.loads(f.metadata()["counters"])
    except Exception as e:  # noqa: BLE001 - corrupt/foreign file
        raise CheckpointError(f"cannot resume from {path}: {e.__class__.__name__}: {e}") from None
    for name, m in modules.items():
        pre = f"module.{name}."
        m.load_state_dict({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})
    for name, opt in optimizers.items():
        pre = f"optim.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith(pre):
                idx, key = k[len(pre) :].split(".", 1)
                state.setdefault(int(idx), {})[key] = v
        sd = opt.state_dict()
        sd["state"] = state
        opt.load_state_dict(sd)
    return counters
