"""Image I/O and conversions (images are float tensors in [-1, 1], NCHW)."""

from editable_deepsc.imaging.io import (MAX_PIXELS, atomic_write, check_image_output, check_output,
                                        check_output_dir, from_pil,
                                        load_image, read_image, resize, save_image, to_pil)

__all__ = ["MAX_PIXELS", "atomic_write", "check_image_output", "check_output", "check_output_dir",
           "from_pil", "load_image", "read_image",
           "resize", "save_image", "to_pil"]
