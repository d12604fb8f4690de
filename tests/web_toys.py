"""A tiny Editable-DeepSC system and samples for the web tests (no trained weights needed)."""

from __future__ import annotations

import threading

import torch
from edit_toys import ToyGuidance
from test_system import Tiny16, ToyEncoder, ToyParser

from editable_deepsc.channel.codec import PCAUncodedCodec
from editable_deepsc.channel.delta import DeltaCodec, fit_delta_statistics
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.editor import Editor
from editable_deepsc.errors import NoFaceFound
from editable_deepsc.receiver import Receiver
from editable_deepsc.system import EditableDeepSC, SystemConfig
from editable_deepsc.text.targets import EditTarget
from editable_deepsc.transmitter import Transmitter
from editable_deepsc.web.samples import Sample


class ToyFaceTransmitter(Transmitter):
    """The toy transmitter, with a stand-in face detector: a flat image has no face."""

    def prepare(self, image, face=None, check_face=False):
        if float(image.std()) < 1e-3:
            raise NoFaceFound("no face found in the photo (try a photo where one face is clearly visible)")
        return super().prepare(image, face=face)  # the real face check needs real faces


class GatedParser(ToyParser):
    """ToyParser that holds any instruction containing "slowly" until :attr:`gate` is set (busy tests)."""

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()

    def parse(self, text):
        if "slowly" in text:
            self.entered.set()
            self.gate.wait(30)
        return super().parse(text)


def toy_system() -> EditableDeepSC:
    """The 16x16 toy system of tests/test_system.py (k = 12 full, 8 per follow-up, refresh every 3).

    Its parser (``system.tx.parser``, a :class:`GatedParser`) blocks instructions containing
    "slowly" until ``parser.gate`` is set; a flat image raises :class:`NoFaceFound`.
    """
    torch.manual_seed(0)
    gen = Tiny16()
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(400, 3, 8, generator=g)
    codec = PCAUncodedCodec(LatentPCA(3, 8).fit(latents), k=12)
    editor = Editor(gen, ToyGuidance(), config=EditConfig(steps=40, lr=0.1, schedule="constant",
                                                          lambda_l2=0.01, lambda_keep=0.0))
    targets = [EditTarget("happy", "more"), EditTarget("age", "more"), EditTarget("yaw", "more")] * 2
    deltas = torch.stack([editor.edit(latents[i:i + 8], (t,), rng=g).w_plus - latents[i:i + 8]
                          for i, t in zip(range(0, 48, 8), targets)]).flatten(0, 1)
    delta = DeltaCodec(fit_delta_statistics(deltas), k=8)
    cfg = SystemConfig(generator="tiny", refresh_every=3, align=False)
    tx = ToyFaceTransmitter(gen, ToyEncoder(gen), GatedParser(), editor, codec, delta, cfg)
    return EditableDeepSC(tx, Receiver(gen, codec, delta), cfg, guidance=ToyGuidance())


def toy_face(system: EditableDeepSC, seed: int = 11) -> torch.Tensor:
    """A face of the toy generator, (1, 3, 16, 16) in [-1, 1]."""
    w = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(seed)) * 0.8
    return system.rx.synthesise(w)


def toy_samples(system: EditableDeepSC) -> list[Sample]:
    """Two toy faces as built-in samples."""
    return [Sample(f"toy-{s}", f"toy face {s}", lambda s=s: toy_face(system, s)) for s in (11, 12)]


def transmit_needs_weights(image, cbr, channel, seed=0):
    """A registered baseline whose trained model is missing (as DeepJSCC before training)."""
    from editable_deepsc.errors import CheckpointError

    raise CheckpointError("unknown model 'toy-jscc' (not in the zoo)")
