"""CLIP's text tower behind the :class:`~editable_deepsc.text.encoder.TextEncoder` protocol."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from editable_deepsc.clip.model import ClipModel
from editable_deepsc.clip.tokenizer import ClipTokenizer
from editable_deepsc.errors import CheckpointError


class ClipTextEncoder:
    """Embed sentences with a CLIP text tower (unit-norm, D = the model's ``embed_dim``).

    Parameters
    ----------
    model : ClipModel
        A loaded CLIP model.
    tokenizer : ClipTokenizer
        Its tokenizer (vocabulary size must match the model's).
    """

    def __init__(self, model: ClipModel, tokenizer: ClipTokenizer):
        if tokenizer.vocab_size != model.cfg.vocab_size:
            raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} tokens, the CLIP text tower "
                                  f"{model.cfg.vocab_size}: wrong vocabulary file for these weights")
        self.model = model
        self.tokenizer = tokenizer
        self.dim = model.cfg.embed_dim

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Embed N sentences → float32 (N, D), unit rows (no gradient)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(texts), max(1, int(batch_size))):
            tokens = self.tokenizer.tokenize(texts[i : i + batch_size], self.model.cfg.context_length)
            out.append(self.model.encode_text(tokens.to(device)).float().cpu())
        return torch.cat(out)
