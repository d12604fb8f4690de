"""StyleCLIP's CLIP loss as a :class:`~editable_deepsc.guidance.base.Guidance`.

For an edit target the guidance picks a text prompt, embeds it once with CLIP's
text tower, and compares it with the image embedding:

* ``loss = strength · (1 − cos(E_I(x), E_T(prompt)))`` — StyleCLIP's global CLIP
  loss (``mode="global"``, the default);
* with ``mode="directional"`` and a ``reference`` image, StyleGAN-NADA's
  directional loss ``1 − cos(E_I(x) − E_I(x₀), E_T(prompt) − E_T(opposite))``.

**"less" uses a contrastive prompt, not a negated one.** CLIP's text tower barely
reads negation ("a face that is not smiling" embeds close to "a smiling face"),
so "less happy" is scored against the *opposite* description, here
"a photo of a face with a neutral expression"; every attribute has a pair
(:data:`CLIP_PROMPTS`: prompt for "more", prompt for "less"). "set" targets use a
prompt naming the value ("a photo of a 60 year old person", a frontal face for
yaw 0). A plain string target is used as the prompt itself.

Scores are cosine similarities (higher is better); with a ``reference`` they are
the change from the reference, ``cos(x, t) − cos(x₀, t)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from editable_deepsc.clip.model import ClipModel, load_clip
from editable_deepsc.clip.tokenizer import ClipTokenizer
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

CLIP_PROMPTS: dict[str, tuple[str, str]] = {
    "happy": ("a photo of a smiling face", "a photo of a face with a neutral expression"),
    "sad": ("a photo of a sad face", "a photo of a face with a neutral expression"),
    "angry": ("a photo of an angry face", "a photo of a calm face"),
    "fearful": ("a photo of a frightened face", "a photo of a calm face"),
    "disgusted": ("a photo of a disgusted face", "a photo of a face with a neutral expression"),
    "surprised": ("a photo of a surprised face", "a photo of a face with a neutral expression"),
    "neutral": ("a photo of a face with a neutral expression", "a photo of a very expressive face"),
    "age": ("a photo of an old person", "a photo of a young person"),
    "gender": ("a photo of a man", "a photo of a woman"),
    "yaw": ("a photo of a face turned to the right", "a photo of a face turned to the left"),
    "pitch": ("a photo of a face looking up", "a photo of a face looking down"),
    "mouth_open": ("a photo of a face with an open mouth", "a photo of a face with a closed mouth"),
    "eyes_open": ("a photo of a face with wide open eyes", "a photo of a face with closed eyes"),
}
"""Per attribute: (prompt for "more", contrastive prompt for "less")."""

Target = ParsedInstruction | EditTarget | str


def prompt_for(target: EditTarget) -> tuple[str, str]:
    """The (target, opposite) prompts of an edit target.

    Parameters
    ----------
    target : EditTarget

    Returns
    -------
    (str, str)
        Prompt the image should match, and the prompt it moves away from.
    """
    more, less = CLIP_PROMPTS[target.attribute]
    if target.direction == "set":
        if target.attribute == "age":
            return f"a photo of a {target.amount:g} year old person", "a photo of a person"
        if target.attribute in ("yaw", "pitch") and target.amount == 0:
            return "a photo of a face looking straight at the camera", more
        return (more, less) if (target.amount or 0) > 0 else (less, more)
    return (more, less) if target.direction == "more" else (less, more)


class ClipGuidance:
    """CLIP-based guidance (StyleCLIP's loss) on the user's own CLIP weights.

    Parameters
    ----------
    model : ClipModel
        A loaded CLIP (see :func:`editable_deepsc.clip.load_clip`).
    tokenizer : ClipTokenizer
        Its BPE tokenizer.
    mode : {"global", "directional"}
        Loss form (module docstring). "directional" needs a ``reference``; without
        one it falls back to "global".

    Examples
    --------
    >>> g = ClipGuidance.from_files("ViT-B-32.safetensors", "bpe_simple_vocab_16e6.txt.gz")
    >>> loss = g.loss(images, EditTarget("happy", "more"))   # (N,), differentiable
    """

    def __init__(self, model: ClipModel, tokenizer: ClipTokenizer, mode: str = "global"):
        if mode not in ("global", "directional"):
            raise BadInput(f"mode must be 'global' or 'directional', got {mode!r}")
        if tokenizer.vocab_size != model.cfg.vocab_size:
            raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} tokens, the CLIP text tower "
                                  f"{model.cfg.vocab_size}: wrong vocabulary file for these weights")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.mode = mode
        self._text_cache: dict[str, torch.Tensor] = {}

    @classmethod
    def from_files(cls, weights: str | Path, vocab: str | Path, quick_gelu: bool = True,
                   mode: str = "global", device: str = "cpu") -> ClipGuidance:
        """Load CLIP weights (``.safetensors`` / ``.pt`` state dict) and the BPE merges file.

        Raises
        ------
        CheckpointError
            Unreadable or mismatching files.
        """
        model = load_clip(weights, quick_gelu=quick_gelu, device=device)
        return cls(model, ClipTokenizer(vocab, context_length=model.cfg.context_length), mode=mode)

    # ------------------------------------------------------------------ embeddings
    def text_embedding(self, prompt: str) -> torch.Tensor:
        """Unit-norm text embedding (D,) of one prompt, cached."""
        if prompt not in self._text_cache:
            device = next(self.model.parameters()).device
            with torch.no_grad():
                tokens = self.tokenizer.tokenize([prompt], self.model.cfg.context_length).to(device)
                self._text_cache[prompt] = self.model.encode_text(tokens)[0]
        return self._text_cache[prompt]

    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings (N, D) of [-1, 1] images (N, 3, H, W); differentiable."""
        return self.model.encode_image(images)

    # ------------------------------------------------------------------ protocol
    def score(self, images: torch.Tensor, target: Target, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine similarity to the target prompt(s), (N,); with ``reference``, the change from it.

        Parameters
        ----------
        images : Tensor
            float (N, 3, H, W) in [-1, 1].
        target : ParsedInstruction, EditTarget or str
            What the images should show (several targets: strength-weighted mean).
        reference : Tensor, optional
            Unedited images (N, 3, H, W).

        Returns
        -------
        Tensor
            float32 (N,), higher is better.
        """
        img = self.image_embedding(images)
        ref = self.image_embedding(reference) if reference is not None else None
        total = torch.zeros(img.shape[0], device=img.device)
        pairs = self._pairs(target)
        for prompt, _, weight in pairs:
            t = self.text_embedding(prompt)
            s = img @ t
            if ref is not None:
                s = s - ref @ t
            total = total + weight * s
        return total / sum(w for _, _, w in pairs)

    def loss(self, images: torch.Tensor, target: Target, reference: torch.Tensor | None = None) -> torch.Tensor:
        """StyleCLIP CLIP loss per image, (N,); lower is better, differentiable w.r.t. ``images``.

        ``global``: ``Σ strength · (1 − cos(E_I(x), E_T(prompt))) / #targets``;
        ``directional`` with a reference: ``1 − cos(E_I(x) − E_I(x₀), E_T(prompt) − E_T(opposite))``.
        """
        img = self.image_embedding(images)
        directional = self.mode == "directional" and reference is not None
        if directional:
            with torch.no_grad():
                ref = self.image_embedding(reference)
        total = torch.zeros(img.shape[0], device=img.device)
        pairs = self._pairs(target)
        for prompt, opposite, weight in pairs:
            t = self.text_embedding(prompt)
            if directional:
                d_text = t - self.text_embedding(opposite) if opposite else t
                cos = F.cosine_similarity(img - ref, d_text.expand_as(img), dim=-1, eps=1e-8)
            else:
                cos = img @ t
            total = total + weight * (1 - cos)
        return total / len(pairs)

    def _pairs(self, target: Target) -> list[tuple[str, str | None, float]]:
        if isinstance(target, str):
            if not target.strip():
                raise BadInput("empty CLIP prompt")
            return [(target, None, 1.0)]
        if isinstance(target, EditTarget):
            targets: tuple[EditTarget, ...] = (target,)
        elif isinstance(target, ParsedInstruction):
            targets = target.targets
        else:
            raise BadInput(f"target must be a ParsedInstruction, EditTarget or str, got {type(target).__name__}")
        if not targets:
            raise BadInput("the instruction has no edit targets (a follow-up is resolved by the session)")
        out = []
        for t in targets:
            prompt, opposite = prompt_for(t)
            out.append((prompt, opposite, float(t.strength)))
        return out
