"""The FFHQ generator: MobileStyleGAN converted from the ``random-face`` wheel's OpenVINO IR.

``random-face==2021.7.21.1`` (installed with ``pip install --no-deps``) carries
``random_face/data/{MappingNetwork,SynthesisNetwork}.{xml,bin}``. The converter
reads them with NumPy (:mod:`editable_deepsc.generator.openvino_ir`, no OpenVINO),
walks the graph from each named modulation to the constants it feeds (the
depthwise kernel, the pointwise kernel with demodulation folded in, the fixed
noise, the bias, the leaky-ReLU slope), checks every constant it does not store
(modulation scales, slopes, gains, Haar filters) against the architecture of
:mod:`editable_deepsc.generator.mobile_stylegan`, computes ``w_avg`` from
16,384 mapped ``z`` and writes safetensors + a zoo card into the user cache
(``cache_dir()/zoo``). Nothing of the wheel lives in the repository.

Set-up runs ``edsc zoo convert ffhq``; a second run only re-checks digests.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.mobile_stylegan import FORMAT, MobileStyleGAN, MobileStyleGANConfig
from editable_deepsc.generator.openvino_ir import IRGraph, IRLayer
from editable_deepsc.paths import zoo_cache_dir
from editable_deepsc.zoo.registry import ConvertResult

WHEEL = "random-face"
WHEEL_VERSION = "2021.7.21.1"
GENERATOR_NAME = "mobilestylegan-ffhq"
EXITS_NAME = "edsc-ffhq-exits"
CONVERT_COMMAND = "edsc zoo convert ffhq"
INSTALL_COMMAND = f"pip install --no-deps --force-reinstall {WHEEL}=={WHEEL_VERSION}"
W_AVG_SAMPLES = 16384
#: sha256 of the IR files inside random-face 2021.7.21.1.
WHEEL_FILES = {
    "MappingNetwork.xml": "73e2096cad6e696e4af47df2477e048ab4c42c0e0dec83c7c66604822689e55b",
    "MappingNetwork.bin": "212dd716bdb556e18db603ea97300d4fa3c872b878c726b2402fea80820e7305",
    "SynthesisNetwork.xml": "7918fce515243954d3e06628cb39a23902d6b1d5d02932cc0c2faee7a2aeeedd",
    "SynthesisNetwork.bin": "c7da15fa22d508c82e1c30dd6b4cdf67fe3ccdddaf85b310ee764dbf0c289645",
}
LICENCE = (
    "research use only: Apache-2.0 as packaged in random-face (Belousov, MobileStyleGAN); distilled from "
    "NVIDIA StyleGAN2-FFHQ (NVIDIA Source Code License-NC, non-commercial); FFHQ data CC BY-NC-SA 4.0"
)


# ---- where things are ------------------------------------------------------------------------------
def cards_dir() -> Path:
    """``cache_dir()/zoo/cards``."""
    return zoo_cache_dir() / "cards"


def weights_dir() -> Path:
    """``cache_dir()/zoo/weights``."""
    return zoo_cache_dir() / "weights"


def wheel_ir_files() -> tuple[str, dict[str, Path]]:
    """Version and IR file paths of the installed ``random-face`` wheel.

    Raises
    ------
    CheckpointError
        The wheel is not installed, is another version, or lacks a file.
    """
    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        raise CheckpointError(f"the {WHEEL} wheel is not installed; fix: {INSTALL_COMMAND}") from None
    if dist.version != WHEEL_VERSION:
        raise CheckpointError(f"{WHEEL} {dist.version} is installed, the converter needs {WHEEL_VERSION}; fix: {INSTALL_COMMAND}")
    files = {name: Path(str(dist.locate_file(f"random_face/data/{name}"))) for name in WHEEL_FILES}
    for name, p in files.items():
        if not p.is_file():
            raise CheckpointError(f"{WHEEL} lacks random_face/data/{name}; fix: {INSTALL_COMMAND}")
    return dist.version, files


def _sha256(path: Path) -> str:
    from editable_deepsc.zoo.registry import sha256_file

    return sha256_file(path)


# ---- graph walking ---------------------------------------------------------------------------------
def _const_behind(g: IRGraph, layer: IRLayer) -> np.ndarray:
    """The constant reached from ``layer`` through Reshape/Unsqueeze/Convert (input 0)."""
    while layer.type != "Const":
        if layer.type not in ("Reshape", "Unsqueeze", "Squeeze", "Convert"):
            raise CheckpointError(f"{g.xml_path.name}: expected a constant behind {layer.name!r}, found a {layer.type}")
        layer = g.input_layer(layer, 0)
    return g.const(layer)


def _other_input(g: IRGraph, layer: IRLayer, not_id: int) -> IRLayer:
    others = [g.layers[i] for i, _ in layer.inputs if i != not_id]
    if len(others) != 1:
        raise CheckpointError(f"{g.xml_path.name}: {layer.name!r} should have two inputs")
    return others[0]


def _check(value: float, want: float, what: str, g: IRGraph) -> None:
    if not math.isclose(float(value), want, rel_tol=1e-5, abs_tol=1e-7):
        raise CheckpointError(f"{g.xml_path.name}: {what} is {float(value):.6g}, the port expects {want:.6g}")


def _scalar(a: np.ndarray, what: str, g: IRGraph) -> float:
    if a.size != 1:
        raise CheckpointError(f"{g.xml_path.name}: {what} should be one number, has shape {a.shape}")
    return float(a.reshape(()))


@dataclass
class _Modulated:
    """What follows one named modulation: its affine map, scale and the op it modulates."""

    weight: np.ndarray
    bias: np.ndarray
    scale: float
    consumer: IRLayer  # the op reading the modulated features


def _modulation(g: IRGraph, prefix: str) -> _Modulated:
    w_const = g.named(f"{prefix}.modulation.weight")
    matmul = g.next_of(w_const, "MatMul")
    add = g.next_of(matmul, "Add")
    bias = _const_behind(g, _other_input(g, add, matmul.id))
    x = g.next_of(add, "Reshape", "Unsqueeze")
    mul = g.next_of(x, "Multiply")
    scale = 1.0
    other = _other_input(g, mul, x.id)
    if other.type == "Const":  # the modulation scale, then the multiply with the features
        scale = _scalar(g.const(other), f"scale of {prefix}", g)
        mul = g.next_of(mul, "Multiply")
    consumers = [g.layers[i] for i in g.consumers[mul.id] if g.layers[i].type not in ("ShapeOf",)]
    if len(consumers) != 1:
        raise CheckpointError(f"{g.xml_path.name}: the modulated features of {prefix} feed {len(consumers)} ops")
    return _Modulated(g.const(w_const), bias.reshape(-1), scale, consumers[0])


def _styled_conv(g: IRGraph, prefix: str, key: str, state: dict[str, np.ndarray], c_in: int, depthwise: bool) -> None:
    """Fill ``key.*`` of the state from the IR block ``prefix`` (``m.conv1`` / ``m.layers.i.conv1``)."""
    mod = _modulation(g, f"{prefix}.conv")
    _check(mod.scale, 1.0 / math.sqrt(c_in * 9), f"modulation scale of {prefix}", g)
    state[f"{key}.modulation.weight"], state[f"{key}.modulation.bias"] = mod.weight, mod.bias
    op = mod.consumer
    if depthwise:
        if op.type != "GroupConvolution":
            raise CheckpointError(f"{g.xml_path.name}: {prefix} should start with a depthwise convolution, found {op.type}")
        dw = g.const_input(op)
        state[f"{key}.weight_dw"] = dw.reshape(dw.shape[0], 1, *dw.shape[-2:])
        op = g.next_of(op, "Convolution")
        state[f"{key}.weight_pw"] = g.const_input(op)
    else:
        if op.type != "Convolution":
            raise CheckpointError(f"{g.xml_path.name}: {prefix} should be a convolution, found {op.type}")
        state[f"{key}.weight"] = g.const_input(op)
    add_noise = g.next_of(op, "Add")
    state[f"{key}.noise"] = g.const_input(add_noise)
    add_bias = g.next_of(add_noise, "Add")
    state[f"{key}.bias"] = g.const_input(add_bias).reshape(-1)
    act = g.next_of(add_bias, "PReLU")
    _check(_scalar(g.const_input(act), "slope", g), 0.2, f"leaky-ReLU slope of {prefix}", g)


def _check_haar(g: IRGraph) -> None:
    s = 1.0 / math.sqrt(2.0)
    for layer in g.of_type("GroupConvolutionBackpropData"):
        f = g.const_input(layer)
        taps = f.reshape(f.shape[0], -1)
        ok = np.allclose(taps, [s, s], atol=1e-6) or np.allclose(taps, [s, -s], atol=1e-6)
        if not ok:
            raise CheckpointError(f"{g.xml_path.name}: {layer.name} is not a Haar synthesis filter")


def config_from_ir(mapping: IRGraph, synthesis: IRGraph) -> MobileStyleGANConfig:
    """Sizes of the network the IR describes (read from its named constants)."""
    n_map = len(mapping.of_type("MatMul"))
    z_dim = mapping.of_type("Parameter")[0].out_shapes[0][-1]
    w_dim = synthesis.of_type("Parameter")[0].out_shapes[0][-1]
    inp = synthesis.named("m.input.input").out_shapes[0]
    channels = []
    i = 0
    while synthesis.has(f"m.layers.{i}.conv2.bias"):
        channels.append(synthesis.named(f"m.layers.{i}.conv2.bias").out_shapes[0][1])
        i += 1
    return MobileStyleGANConfig(z_dim=z_dim, w_dim=w_dim, n_mapping=n_map, input_channels=inp[1], channels=channels)


def state_from_ir(mapping: IRGraph, synthesis: IRGraph) -> tuple[MobileStyleGANConfig, dict[str, torch.Tensor]]:
    """Build the state dict of :class:`MobileStyleGAN` (without ``w_avg``) from the two IR graphs.

    Returns
    -------
    (MobileStyleGANConfig, dict of str to torch.Tensor)
        Float32 tensors named as the PyTorch module names them.

    Raises
    ------
    CheckpointError
        The graph does not have the structure or constants of MobileStyleGAN.
    """
    cfg = config_from_ir(mapping, synthesis)
    st: dict[str, np.ndarray] = {}
    # mapping: pixel norm, then n x (MatMul, Add bias, PReLU 0.2, Multiply sqrt 2)
    for i, mm in enumerate(mapping.of_type("MatMul")):
        st[f"mapping_net.layers.{i}.weight"] = mapping.const_input(mm)
        add = mapping.next_of(mm, "Add")
        st[f"mapping_net.layers.{i}.bias"] = _const_behind(mapping, _other_input(mapping, add, mm.id)).reshape(-1)
        act = mapping.next_of(add, "PReLU")
        _check(_scalar(mapping.const_input(act), "slope", mapping), 0.2, f"mapping slope {i}", mapping)
        gain = mapping.next_of(act, "Multiply")
        _check(_scalar(mapping.const_input(gain), "gain", mapping), math.sqrt(2.0), f"mapping gain {i}", mapping)
    st["input"] = synthesis.const(synthesis.named("m.input.input"))
    _styled_conv(synthesis, "m.conv1", "conv1", st, cfg.input_channels, depthwise=False)
    c_prev = cfg.input_channels
    for i, c in enumerate(cfg.channels):
        up = _modulation(synthesis, f"m.layers.{i}.up")
        _check(up.scale, 1.0, f"scale of m.layers.{i}.up", synthesis)
        if up.consumer.type != "VariadicSplit":
            raise CheckpointError(f"{synthesis.xml_path.name}: m.layers.{i}.up should feed the inverse DWT")
        st[f"layers.{i}.up.modulation.weight"], st[f"layers.{i}.up.modulation.bias"] = up.weight, up.bias
        _styled_conv(synthesis, f"m.layers.{i}.conv1", f"layers.{i}.conv1", st, c_prev // 4, depthwise=True)
        _styled_conv(synthesis, f"m.layers.{i}.conv2", f"layers.{i}.conv2", st, c, depthwise=True)
        c_prev = c
    last = len(cfg.channels) - 1
    head = _modulation(synthesis, f"m.layers.{last}.to_img.conv")
    _check(head.scale, 1.0 / math.sqrt(c_prev), "modulation scale of to_img", synthesis)
    st["to_img.modulation.weight"], st["to_img.modulation.bias"] = head.weight, head.bias
    st["to_img.weight"] = synthesis.const(synthesis.named(f"m.layers.{last}.to_img.conv.weight"))
    st["to_img.bias"] = synthesis.const(synthesis.named(f"m.layers.{last}.to_img.bias")).reshape(-1)
    _check_haar(synthesis)
    state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in st.items()}
    return cfg, state


@torch.no_grad()
def mean_w(g: MobileStyleGAN, n: int = W_AVG_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Mean of ``mapping(z)`` over ``n`` z ~ N(0, I) drawn from ``seed``, shape (w_dim,)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.z_dim, generator=gen)
    return torch.cat([g.mapping(c) for c in z.split(2048)]).double().mean(0).float()


def convert_ir(
    mapping_xml: Path, mapping_bin: Path, synthesis_xml: Path, synthesis_bin: Path, w_avg_samples: int = W_AVG_SAMPLES
) -> MobileStyleGAN:
    """Convert one IR pair into a :class:`MobileStyleGAN` (with ``w_avg`` computed)."""
    cfg, state = state_from_ir(IRGraph(mapping_xml, mapping_bin), IRGraph(synthesis_xml, synthesis_bin))
    g = MobileStyleGAN(cfg)
    state["w_avg"] = torch.zeros(cfg.w_dim)
    missing = set(g.state_dict()) - set(state)
    if missing:
        raise CheckpointError(f"the IR lacks {sorted(missing)[:3]}")
    g.load_state_dict(state, strict=True)
    g.w_avg.copy_(mean_w(g, w_avg_samples))
    return g.eval().requires_grad_(False)


# ---- the cached card -------------------------------------------------------------------------------
def card_path(name: str = GENERATOR_NAME) -> Path:
    """Where the cache card of ``name`` lives."""
    return cards_dir() / f"{name}.json"


def read_card(name: str = GENERATOR_NAME) -> dict[str, Any]:
    """The cache card (a dict) of the converted generator.

    Raises
    ------
    CheckpointError
        Not converted yet (quoting the conversion command).
    """
    p = card_path(name)
    if not p.is_file():
        raise CheckpointError(f"the FFHQ generator is not converted yet ({p} missing); fix: {CONVERT_COMMAND}")
    try:
        return json.loads(p.read_text())
    except ValueError:
        raise CheckpointError(f"unreadable card {p}; fix: {CONVERT_COMMAND} --force") from None


def _card_weights(card: dict[str, Any]) -> Path:
    p = Path(card["file"])
    return p if p.is_absolute() else weights_dir() / p


def convert_ffhq(force: bool = False, w_avg_samples: int = W_AVG_SAMPLES) -> ConvertResult:
    """Convert the wheel's IR into the user cache (idempotent).

    Parameters
    ----------
    force : bool
        Convert again even if the cached card and file are intact.
    w_avg_samples : int
        Mapped ``z`` averaged into ``w_avg``.

    Raises
    ------
    CheckpointError
        Wheel missing / another version / a file of it changed (quoting the reinstall command),
        or an IR that is not MobileStyleGAN.
    """
    from editable_deepsc.zoo.registry import ModelCard, save_state_dict

    version, files = wheel_ir_files()
    digests = {name: _sha256(p) for name, p in files.items()}
    for name, want in WHEEL_FILES.items():
        if digests[name] != want:
            raise CheckpointError(
                f"random_face/data/{name} differs from {WHEEL} {WHEEL_VERSION} (sha256 {digests[name][:12]}… != "
                f"{want[:12]}…); fix: {INSTALL_COMMAND}"
            )
    cp = card_path()
    if not force and cp.is_file():
        try:
            old = json.loads(cp.read_text())
            wp = _card_weights(old)
            if old["config"]["source_files"] == digests and wp.is_file() and _sha256(wp) == old["sha256"]:
                return ConvertResult(cp, wp, False, old["sha256"])
        except (ValueError, KeyError, TypeError):
            pass
    g = convert_ir(files["MappingNetwork.xml"], files["MappingNetwork.bin"], files["SynthesisNetwork.xml"],
                   files["SynthesisNetwork.bin"], w_avg_samples)  # fmt: skip
    config = {"arch": "mobile-stylegan", **g.config.to_json(), "wheel": f"{WHEEL}=={version}",
              "source_files": digests, "w_avg_samples": w_avg_samples, "truncation": 0.7}  # fmt: skip
    wp = weights_dir() / f"{GENERATOR_NAME}.safetensors"
    sha = save_state_dict(g.state_dict(), wp, metadata={"format": FORMAT, "config": json.dumps(config)})
    card = ModelCard(
        name=GENERATOR_NAME, kind="generator", file=str(wp.resolve()), sha256=sha, licence=LICENCE,
        source=f"converted by `{CONVERT_COMMAND}` from the OpenVINO IR in {WHEEL}=={version} (random_face/data/*.xml/.bin)",
        resolution=g.resolution,
        description="MobileStyleGAN FFHQ 1024x1024 (Belousov 2021), W+ of 23 x 512, truncation centre from 16,384 z",
        config=config,
    )  # fmt: skip
    data = card.to_json()
    data["fix"] = CONVERT_COMMAND
    cards_dir().mkdir(parents=True, exist_ok=True)
    tmp = cp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, cp)
    return ConvertResult(cp, wp, True, sha)


def load_state(card: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The converted weights of ``card``, sha256-checked (errors quote the conversion command)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wp = _card_weights(card)
    fix = card.get("fix", CONVERT_COMMAND)
    if not wp.is_file():
        raise CheckpointError(f"converted FFHQ weights missing ({wp}); fix: {fix}")
    got = _sha256(wp)
    if got != card["sha256"]:
        raise CheckpointError(f"converted FFHQ weights are corrupt ({wp.name}: sha256 {got[:12]}… != {card['sha256'][:12]}…); fix: {fix} --force")
    try:
        return load_file(str(wp))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"converted FFHQ weights are corrupt ({wp.name}: {e}); fix: {fix} --force") from None


def load_ffhq(exits: bool = True, device: str | torch.device = "cpu") -> MobileStyleGAN:
    """The converted FFHQ generator, with the repository's trained exits when ``exits`` (and present).

    Raises
    ------
    CheckpointError
        Not converted, missing or corrupt file (quoting the command that repairs it).
    """
    card = read_card()
    state = load_state(card)
    g = MobileStyleGAN.from_state(state, card.get("config"))
    if exits and g.config.channels == MobileStyleGANConfig().channels:
        attach_exits(g)
    g.name = GENERATOR_NAME
    return g.to(device).eval().requires_grad_(False)


def _exits_config(name_or_path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config`` of an exits file (card or safetensors header), ``None`` for an unregistered name."""
    from editable_deepsc.zoo import registry

    p = Path(name_or_path)
    if p.suffix == ".safetensors":
        return json.loads(registry.file_metadata(p).get("config", "{}"))
    c = registry.find_card(str(name_or_path))
    return None if c is None else c.config


def exits_from_card(card: Any, state: dict[str, torch.Tensor]) -> torch.nn.ModuleDict:
    """Zoo builder of kind ``generator-exits``: the exit heads alone (``str(size) -> ExitHead``), eval mode."""
    g = MobileStyleGAN(MobileStyleGANConfig(exit_hidden=int(card.config["exit_hidden"]),
                                            exit_convs=int(card.config["exit_convs"])))  # fmt: skip
    for size, block in card.config["exits"].items():
        g.add_exit(int(size), int(block))
    sub = {k[len("exits.") :]: v for k, v in state.items() if k.startswith("exits.")}
    try:
        g.exits.load_state_dict(sub, strict=True)
    except RuntimeError:
        raise CheckpointError(f"{card.name}: tensors do not fit exits {card.config['exits']}") from None
    return g.exits.eval().requires_grad_(False)


def attach_exits(g: MobileStyleGAN, name_or_path: str | os.PathLike = EXITS_NAME) -> list[int]:
    """Add the trained exit heads (zoo name or ``.safetensors`` path) to ``g``; returns their sizes.

    A zoo name that is not registered adds nothing (returns ``[]``).

    Raises
    ------
    CheckpointError
        Corrupt file, sha256 mismatch, or heads that do not fit ``g``.
    """
    from editable_deepsc.zoo import registry

    config = _exits_config(name_or_path)
    if config is None:
        return []
    state = registry.load_state_dict(name_or_path)
    g.config.exit_hidden = int(config.get("exit_hidden", g.config.exit_hidden))
    g.config.exit_convs = int(config.get("exit_convs", g.config.exit_convs))
    for size, block in config.get("exits", {}).items():
        g.add_exit(int(size), int(block))
    sub = {k for k in g.state_dict() if k.startswith("exits.")}
    if sub != set(state):
        raise CheckpointError(f"exit weights {name_or_path} do not fit the generator {g.name}")
    g.load_state_dict(state, strict=False)
    return sorted(int(s) for s in config.get("exits", {}))
