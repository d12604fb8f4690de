"""CLIP in plain PyTorch: model, BPE tokenizer, and its text tower as a :class:`TextEncoder`.

Bring your own weights (OpenAI CLIP or OpenCLIP ViT state dicts in safetensors or a
``torch.save``'d dict) and the usual ``bpe_simple_vocab_16e6.txt.gz``; nothing is downloaded.
"""

from editable_deepsc.clip.model import ClipConfig, ClipModel, load_clip, read_state_dict
from editable_deepsc.clip.text_encoder import ClipTextEncoder
from editable_deepsc.clip.tokenizer import ClipTokenizer

__all__ = ["ClipConfig", "ClipModel", "ClipTextEncoder", "ClipTokenizer", "load_clip", "read_state_dict"]
