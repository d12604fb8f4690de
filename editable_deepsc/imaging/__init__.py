"""Image I/O and conversions (images are float tensors in [-1, 1], NCHW)."""

from editable_deepsc.imaging.io import from_pil, load_image, resize, save_image, to_pil

__all__ = ["from_pil", "load_image", "resize", "save_image", "to_pil"]
