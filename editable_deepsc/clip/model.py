"""CLIP (ViT image tower + causal text transformer) in plain PyTorch.

Parameter names follow the OpenAI / OpenCLIP state dicts (``visual.conv1.weight``,
``visual.transformer.resblocks.0.attn.in_proj_weight``, ``token_embedding.weight``,
``text_projection``, ``logit_scale``, ...), so their weights load with
:func:`load_clip` and every size is read off the tensors' shapes. Attention
heads are not stored in a state dict: CLIP uses one head per 64 channels, the
default here (override with ``head_width``). The activation is not stored
either: OpenAI's models use QuickGELU (``x·sigmoid(1.702x)``, the default),
most OpenCLIP/LAION models plain GELU (``quick_gelu=False``) unless their name
ends in ``-quickgelu``.

Only ViT image towers are implemented (no ModifiedResNet "RN50" towers, no
Hugging Face text towers); TorchScript archives are not read.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editable_deepsc.errors import CheckpointError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipConfig:
    """Sizes of a CLIP model (all inferable from a state dict except heads and activation).

    Attributes
    ----------
    embed_dim : int
        Joint embedding size D.
    image_resolution, vision_patch_size, vision_width, vision_layers, vision_heads : int
        ViT image tower: input side in pixels, patch side, width, blocks, heads.
    context_length, vocab_size, text_width, text_layers, text_heads : int
        Text tower.
    quick_gelu : bool
        QuickGELU (OpenAI) instead of GELU.
    """

    embed_dim: int
    image_resolution: int
    vision_patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    context_length: int
    vocab_size: int
    text_width: int
    text_layers: int
    text_heads: int
    quick_gelu: bool = True

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor], quick_gelu: bool = True,
                        head_width: int = 64) -> ClipConfig:
        """Infer the configuration from tensor shapes.

        Raises
        ------
        CheckpointError
            If the state dict is not a ViT CLIP.
        """
        if "visual.conv1.weight" not in sd:
            if any(k.startswith("visual.layer1") for k in sd):
                raise CheckpointError("ResNet (RN50-style) CLIP image towers are not supported; use a ViT model")
            raise CheckpointError("not a CLIP state dict (no visual.conv1.weight)")
        try:
            conv = sd["visual.conv1.weight"]
            width, patch = conv.shape[0], conv.shape[-1]
            grid = math.isqrt(sd["visual.positional_embedding"].shape[0] - 1)
            v_layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
            t_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
            t_width = sd["ln_final.weight"].shape[0]
            return cls(
                embed_dim=sd["text_projection"].shape[1], image_resolution=grid * patch, vision_patch_size=patch,
                vision_width=width, vision_layers=v_layers, vision_heads=max(1, width // head_width),
                context_length=sd["positional_embedding"].shape[0], vocab_size=sd["token_embedding.weight"].shape[0],
                text_width=t_width, text_layers=t_layers, text_heads=max(1, t_width // head_width),
                quick_gelu=quick_gelu,
            )
        except KeyError as e:
            raise CheckpointError(f"CLIP state dict lacks {e.args[0]}") from e


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)`` (OpenAI CLIP's activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names (batch-first)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise CheckpointError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.reshape(n, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(y.transpose(1, 2).reshape(n, t, c))


class ResidualBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int, quick_gelu: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(
            c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU() if quick_gelu else nn.GELU(),
            c_proj=nn.Linear(4 * width, width)))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of :class:`ResidualBlock` (``resblocks``)."""

    def __init__(self, width: int, layers: int, heads: int, quick_gelu: bool):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualBlock(width, heads, quick_gelu) for _ in range(layers)])

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, causal)
        return x


class VisionTransformer(nn.Module):
    """CLIP's ViT image tower: patches → class token → transformer → ``ln_post`` → ``proj``."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        w, p = cfg.vision_width, cfg.vision_patch_size
        grid = cfg.image_resolution // p
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads, cfg.quick_gelu)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) CLIP-normalised pixels → (N, D) image features (not normalised)."""
        x = self.conv1(x).flatten(2).transpose(1, 2)  # (N, grid², W)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class ClipModel(nn.Module):
    """CLIP with OpenAI/OpenCLIP parameter names.

    Parameters
    ----------
    cfg : ClipConfig
        Model sizes.

    Notes
    -----
    :meth:`encode_image` takes images in the project's convention (float, [-1, 1],
    NCHW, any size) and resizes and normalises them itself, differentiably.
    """

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.context_length, cfg.text_width))
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.quick_gelu)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.zeros(cfg.text_width, cfg.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def random(cls, cfg: ClipConfig, seed: int = 0) -> ClipModel:
        """A randomly initialised model, reproducible by ``seed`` (for tests and smoke runs).

        Weights are normal with std 1/sqrt(fan-in) (patch conv, attention, MLP, projections),
        width^-0.5 for the class and positional embeddings, 0.02 for token embeddings;
        LayerNorms start at identity and biases at zero.
        """
        model = cls(cfg)
        rng = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name == "logit_scale":
                    continue
                if ".ln_" in name or name.startswith(("ln_", "visual.ln_")):
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                elif name == "token_embedding.weight":
                    p.copy_(torch.randn(p.shape, generator=rng) * 0.02)
                elif p.ndim == 1 or "positional_embedding" in name:
                    p.copy_(torch.randn(p.shape, generator=rng) * p.shape[-1] ** -0.5)
                elif name in ("visual.proj", "text_projection"):
                    p.copy_(torch.randn(p.shape, generator=rng) * p.shape[0] ** -0.5)
                else:  # (out, in, ...) weights
                    p.copy_(torch.randn(p.shape, generator=rng) * p[0].numel() ** -0.5)
        return model

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (N, 3, H, W) → CLIP input (N, 3, R, R): bicubic resize + CLIP mean/std."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
        r = self.cfg.image_resolution
        x = (images.float() + 1) / 2
        if x.shape[-2:] != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bicubic", align_corners=False,
                              antialias=bool(x.shape[-1] > r))
        return (x - self.pixel_mean) / self.pixel_std

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image embeddings.

        Parameters
        ----------
        images : Tensor
            float (N, 3, H, W) in [-1, 1].
        normalize : bool
            L2-normalise the rows.

        Returns
        -------
        Tensor
            float32 (N, D); differentiable with respect to ``images``.
        """
        feats = self.visual(self.preprocess(images))
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Text embeddings from token ids (N, L) int64 (L ≤ context length) → float32 (N, D).

        The feature is taken at the end-of-text token (the largest id in each row).
        """
        n, length = tokens.shape
        if length > self.cfg.context_length:
            raise ValueError(f"{length} tokens > context length {self.cfg.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.ln_final(self.transformer(x, causal=True))
        feats = x[torch.arange(n), tokens.argmax(dim=-1)] @ self.text_projection
        return F.normalize(feats, dim=-1) if normalize else feats


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a CLIP state dict from ``.safetensors`` or a ``torch.save``'d dict (``weights_only=True``).

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}``, strips ``module.`` prefixes and drops
    the integer entries some OpenAI files carry (``input_resolution``, ``context_length``, ``vocab_size``).

    Raises
    ------
    CheckpointError
        Missing, unreadable, TorchScript or pickled-object files.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"CLIP weights not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure is a bad checkpoint to the user
        hint = " (TorchScript archives are not supported: save the state dict with torch.save or safetensors)" \
            if "TorchScript" in str(e) or "constants.pkl" in str(e) or "archive" in str(e) else ""
        raise CheckpointError(f"cannot read CLIP weights {path}: {str(e).splitlines()[0][:200]}{hint}") from e
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} does not hold a dict of tensors")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    for k in ("input_resolution", "context_length", "vocab_size"):
        sd.pop(k, None)
    return sd


def load_clip(path: str | Path, quick_gelu: bool = True, head_width: int = 64,
              device: str | torch.device = "cpu") -> ClipModel:
    """Build a :class:`ClipModel` from a local weights file, sizes inferred from its tensors.

    Parameters
    ----------
    path : str or Path
        ``.safetensors`` or ``.pt``/``.pth``/``.bin`` holding an OpenAI/OpenCLIP ViT state dict.
    quick_gelu : bool
        True for OpenAI models and OpenCLIP ``-quickgelu`` variants, False for other OpenCLIP models.
    head_width : int
        Channels per attention head (64 for every published CLIP).
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    ClipModel
        In eval mode, parameters frozen (gradients still flow to the inputs).

    Raises
    ------
    CheckpointError
        Unreadable file, non-ViT or non-CLIP state dict, or missing/unexpected tensors.
    """
    sd = read_state_dict(path)
    cfg = ClipConfig.from_state_dict(sd, quick_gelu=quick_gelu, head_width=head_width)
    model = ClipModel(cfg)
    result = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path}: CLIP state dict does not match the inferred model "
                              f"(missing {result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]})")
    model.eval().requires_grad_(False)
    return model.to(device)


def config_dict(cfg: ClipConfig) -> dict:
    """The configuration as a plain dict (for result files)."""
    return asdict(cfg)
