"""The tfjs graph-model reader and its reference executor, on tiny models the tests write."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from editable_deepsc.errors import CheckpointError
from editable_deepsc.guidance.faces.tfjs_graph import TfjsGraph, decode_attr, decode_weights, run_graph


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*v: int) -> dict:
    return {"list": {"i": [str(i) for i in v]}}


def _const(name: str) -> dict:
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}}


def _node(name: str, op: str, inputs: list[str], **attr) -> dict:
    return {"name": name, "op": op, "input": inputs, "attr": attr}


def write_model(folder, nodes, groups):
    """Write model.json + one shard per group; ``groups``: list of [(entry, bytes), ...]."""
    manifest = []
    for g, entries in enumerate(groups):
        blob = b"".join(b for _, b in entries)
        half = len(blob) // 2  # two shards per group: the reader must concatenate them
        (folder / f"g{g}-1.bin").write_bytes(blob[:half])
        (folder / f"g{g}-2.bin").write_bytes(blob[half:])
        manifest.append({"paths": [f"g{g}-1.bin", f"g{g}-2.bin"], "weights": [e for e, _ in entries]})
    doc = {"format": "graph-model", "generatedBy": "test", "modelTopology": {"node": nodes}, "weightsManifest": manifest}
    path = folder / "model.json"
    path.write_text(json.dumps(doc))
    return path


def f32(name, a):
    a = np.asarray(a, np.float32)
    return {"name": name, "shape": list(a.shape), "dtype": "float32"}, a.astype("<f4").tobytes()


def i32(name, a):
    a = np.asarray(a, np.int32)
    return {"name": name, "shape": list(a.shape), "dtype": "int32"}, a.astype("<i4").tobytes()


def uint8(name, q, scale, minimum):
    q = np.asarray(q, np.uint8)
    e = {"name": name, "shape": list(q.shape), "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": scale, "min": minimum}}
    return e, q.tobytes()


def f16(name, a):
    a = np.asarray(a, np.float16)
    e = {"name": name, "shape": list(a.shape), "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}}
    return e, a.astype("<f2").tobytes()


def test_attributes_decode_as_tensorflow_writes_them():
    assert decode_attr(_s("SAME")) == "SAME"
    assert decode_attr(_ints(1, 2, 2, 1)) == [1, 2, 2, 1]
    assert decode_attr({"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}}) == ["BiasAdd", "Relu"]
    assert decode_attr({"f": 0.5}) == 0.5 and decode_attr({"b": True}) is True
    assert decode_attr({"list": {}}) == []


def test_quantised_weights_dequantise_like_tfjs():
    q = np.array([0, 1, 127, 255], np.uint8)
    half = np.array([0.1, -2.5, 65504.0], np.float16)
    entries = [uint8("a", q, 0.0123, -1.5), f16("b", half), i32("c", [3, -4]), f32("d", [1.25])]
    out = decode_weights([e for e, _ in entries], b"".join(b for _, b in entries))
    want_a = (q.astype(np.float64) * 0.0123 - 1.5).astype(np.float32)
    assert out["a"].dtype == np.float32 and np.array_equal(out["a"], want_a)
    assert np.array_equal(out["b"], half.astype(np.float32))
    assert out["c"].dtype == np.int32 and out["c"].tolist() == [3, -4]
    assert out["d"].tolist() == [1.25]


def test_weight_bytes_must_match_the_manifest():
    e, b = f32("w", np.ones((2, 3)))
    with pytest.raises(CheckpointError, match="ends inside 'w'"):
        decode_weights([e], b[:-4])
    with pytest.raises(CheckpointError, match="4 bytes left"):
        decode_weights([e], b + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="unsupported dtype"):
        decode_weights([{"name": "s", "shape": [1], "dtype": "string"}], b"x")


def tiny_model(folder, rng):
    """A graph with the supported conv/elementwise/reduction ops and mixed weight dtypes; its weights."""
    w = {
        "k1": rng.standard_normal((3, 3, 3, 4)).astype(np.float32) * 0.3,  # HWIO, stride 2 SAME
        "b1": rng.standard_normal(4).astype(np.float32),
        "dw": rng.standard_normal((3, 3, 4, 1)).astype(np.float32) * 0.3,
        "db": rng.standard_normal(4).astype(np.float32),
        "k2": rng.standard_normal((1, 1, 4, 6)).astype(np.float32) * 0.3,
        "fc": rng.standard_normal((6, 5)).astype(np.float32),
        "fb": rng.standard_normal(5).astype(np.float32),
    }
    q = rng.integers(0, 256, size=(1, 1, 4, 6), dtype=np.uint8)
    w["k2"] = (q.astype(np.float64) * 0.01 - 1.2).astype(np.float32)  # stored uint8-quantised
    w["dw"] = w["dw"].astype(np.float16).astype(np.float32)  # stored float16
    nodes = [
        _node("x", "Placeholder", [], shape={"shape": {"dim": [{"size": "-1"}, {"size": "9"}, {"size": "9"}, {"size": "3"}]}}),
        *[_const(n) for n in ("k1", "b1", "dw", "db", "k2", "fc", "fb", "six", "zero", "axes", "pads")],
        _node("c1", "_FusedConv2D", ["x", "k1", "b1"], strides=_ints(1, 2, 2, 1), padding=_s("SAME"),
              fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}}, num_args={"i": "1"}),
        _node("p", "Pad", ["c1", "pads"]),
        _node("d1", "DepthwiseConv2dNative", ["p", "dw"], strides=_ints(1, 1, 1, 1), padding=_s("VALID")),
        _node("d2", "Add", ["d1", "db"]),
        _node("r6a", "Minimum", ["d2", "six"]),
        _node("r6", "Maximum", ["r6a", "zero"]),
        _node("c2", "Conv2D", ["r6", "k2"], strides=_ints(1, 1, 1, 1), padding=_s("SAME")),
        _node("m", "Mean", ["c2", "axes"], keep_dims={"b": False}),
        _node("out", "_FusedMatMul", ["m", "fc", "fb"], fused_ops={"list": {"s": [_s("BiasAdd")["s"]]}},
              transpose_a={"b": False}, transpose_b={"b": False}),
    ]
    # the executor must not depend on file order: put the output node first
    nodes = [nodes[-1], *nodes[:-1]]
    groups = [
        [f32("k1", w["k1"]), f32("b1", w["b1"]), f16("dw", w["dw"]), f32("db", w["db"])],
        [uint8("k2", q, 0.01, -1.2), f32("fc", w["fc"]), f32("fb", w["fb"]), f32("six", 6.0), f32("zero", 0.0),
         i32("axes", [1, 2]), i32("pads", [[0, 0], [1, 1], [1, 1], [0, 0]])],
    ]
    return write_model(folder, nodes, groups), w


def reference(x, w):
    """The tiny model written out in plain torch (NCHW), TF 'SAME' stride-2 padding by hand."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    h = x.permute(0, 3, 1, 2)
    # SAME for 9 px, k3, s2: out 5, total pad 2 -> (1, 1)
    h = F.relu(F.conv2d(F.pad(h, (1, 1, 1, 1)), t["k1"].permute(3, 2, 0, 1), stride=2) + t["b1"].view(1, -1, 1, 1))
    h = F.conv2d(F.pad(h, (1, 1, 1, 1)), t["dw"].permute(2, 3, 0, 1), groups=4) + t["db"].view(1, -1, 1, 1)
    h = h.clamp(0, 6)
    h = F.conv2d(h, t["k2"].permute(3, 2, 0, 1))
    return h.mean(dim=(2, 3)) @ t["fc"] + t["fb"]


def test_the_executor_runs_a_tiny_graph_like_plain_torch(tmp_path):
    path, w = tiny_model(tmp_path, np.random.default_rng(0))
    g = TfjsGraph(path)
    assert g.inputs == ["x"] and g.outputs == ["out"]
    assert g.ops()["Const"] == 11
    x = torch.rand(2, 9, 9, 3, generator=torch.Generator().manual_seed(1)) * 4 - 2
    got = run_graph(g, {"x": x})["out"]
    assert got.shape == (2, 5)
    assert torch.allclose(got, reference(x, w), atol=1e-5)


def test_stride_two_same_padding_puts_the_odd_pixel_after(tmp_path):
    # an 8-px input, k3 s2: TF pads 0 before and 1 after (torch's symmetric padding would differ)
    k = np.zeros((3, 3, 1, 1), np.float32)
    k[0, 0, 0, 0] = 1.0  # picks the top-left tap
    nodes = [_node("x", "Placeholder", []), _const("k"),
             _node("y", "Conv2D", ["x", "k"], strides=_ints(1, 2, 2, 1), padding=_s("SAME"))]
    g = TfjsGraph(write_model(tmp_path, nodes, [[f32("k", k)]]))
    x = torch.arange(64, dtype=torch.float32).reshape(1, 8, 8, 1)
    y = run_graph(g, {"x": x})["y"][0, :, :, 0]
    assert y.shape == (4, 4)
    assert y[0, 0] == 0.0 and y[1, 1] == x[0, 2, 2, 0]  # no padding before: tap (0, 0) reads pixel (0, 0)


def test_the_reader_refuses_broken_models(tmp_path):
    path, _ = tiny_model(tmp_path, np.random.default_rng(0))
    (tmp_path / "g1-2.bin").unlink()
    with pytest.raises(CheckpointError, match="shard g1-2.bin missing"):
        TfjsGraph(path)
    nodes = [_node("x", "Placeholder", []), _node("y", "Erf", ["x"])]
    g = TfjsGraph(write_model(tmp_path, nodes, []))
    with pytest.raises(CheckpointError, match="op 'Erf'"):
        run_graph(g, {"x": torch.zeros(1)})
    nodes = [_node("x", "Placeholder", []), _node("y", "Relu", ["nowhere"])]
    with pytest.raises(CheckpointError, match="unknown node 'nowhere'"):
        TfjsGraph(write_model(tmp_path, nodes, []))
    nodes = [_node("a", "Relu", ["b"]), _node("b", "Relu", ["a"])]
    with pytest.raises(CheckpointError, match="cycle"):
        TfjsGraph(write_model(tmp_path, nodes, [])).order()
    (tmp_path / "bad.json").write_text('{"modelTopology": {"config": {}}}')
    with pytest.raises(CheckpointError, match="not a tfjs graph model"):
        TfjsGraph(tmp_path / "bad.json")
