"""Inversion: image -> W+ latent of a style-based generator (the image semantic encoder).

* :func:`invert` -- one entry for the three methods (``encoder``, ``optimize``, ``hybrid``);
* :class:`E4EEncoder`, :func:`load_encoder` -- the e4e-style encoders (``edsc-e4e-faces64``, ``edsc-e4e-ffhq``);
* :func:`invert_optimize` -- Adam on W+ or on a single ``w``;
* :func:`prepare_image` -- size checks and face alignment of user photos;
* :func:`reconstruction_stats` -- PSNR, SSIM, LPIPS and identity of a reconstruction.
"""

from editable_deepsc.inversion.encoder import ENCODER_NAME, E4EEncoder, load_encoder, save_encoder
from editable_deepsc.inversion.files import run_invert_file
from editable_deepsc.inversion.invert import METHODS, InversionOutput, invert
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.inversion.optimize import OptimizeResult, invert_optimize
from editable_deepsc.inversion.prepare import PreparedImage, prepare_image
from editable_deepsc.inversion.quality import reconstruction_stats

__all__ = [
    "ENCODER_NAME",
    "E4EEncoder",
    "InversionOutput",
    "METHODS",
    "OptimizeResult",
    "PreparedImage",
    "ReconstructionLoss",
    "invert",
    "invert_optimize",
    "load_encoder",
    "prepare_image",
    "reconstruction_stats",
    "run_invert_file",
    "save_encoder",
]
