"""A reader of TensorFlow.js *graph models* (``model.json`` + ``.bin`` weight shards), and a small
reference executor for the ops it knows.

A tfjs graph model is a frozen TensorFlow ``GraphDef`` written as JSON:

* ``modelTopology.node``: the nodes in order, each ``{"name", "op", "input": [...], "attr": {...}}``.
  Attribute values are protobuf ``AttrValue`` objects in JSON form: ``{"s": base64}``,
  ``{"i": "3"}`` (int64 as a string), ``{"f": 0.5}``, ``{"b": true}``, ``{"type": "DT_FLOAT"}``,
  ``{"shape": {...}}`` and ``{"list": {"i": [...], "s": [...], ...}}``.
* ``weightsManifest``: groups ``{"paths": [shard, ...], "weights": [entry, ...]}``. A group's shards,
  concatenated, hold its entries' bytes back to back (little-endian) in the listed order. An entry
  is ``{"name", "shape", "dtype"}`` plus, when quantised, ``"quantization": {"dtype": "uint8" |
  "uint16", "scale", "min"}`` (value = ``q * scale + min``) or ``{"dtype": "float16"}``.
  Every ``Const`` node's value is the weight of the same name.

:class:`TfjsGraph` parses both and decodes every weight to a NumPy array (float32 for floats);
:func:`run_graph` evaluates the graph with PyTorch ops on NHWC tensors, as tfjs would. The
executor is a check for ports (the face nets are ported to readable modules; the executor runs the
file as written), not a runtime: it supports the op set of :data:`SUPPORTED_OPS` only.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from editable_deepsc.errors import CheckpointError

#: tfjs dtype → (NumPy dtype of the stored bytes, bytes per element)
STORED_DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4),
    "int32": ("<i4", 4),
    "bool": ("u1", 1),
    "uint8": ("u1", 1),
    "uint16": ("<u2", 2),
    "float16": ("<f2", 2),
}


@dataclass
class Node:
    """One graph node: ``op``, ``inputs`` (node names, ``^control`` inputs dropped) and decoded ``attr``."""

    name: str
    op: str
    inputs: list[str]
    attr: dict[str, Any] = field(default_factory=dict)


def decode_attr(value: dict[str, Any]) -> Any:
    """Decode one JSON ``AttrValue``: strings to ``str``, ints to ``int``, lists to Python lists.

    Parameters
    ----------
    value : dict
        E.g. ``{"s": "U0FNRQ=="}`` → ``"SAME"``; ``{"list": {"i": ["1", "2"]}}`` → ``[1, 2]``.

    Returns
    -------
    object
        ``str``, ``int``, ``float``, ``bool``, ``list``, or the raw dict for ``shape``/``tensor``/``func``.
    """
    if "list" in value:
        lst = value["list"]
        for key in ("s", "i", "f", "b", "type"):
            if key in lst:
                return [decode_attr({key: v}) for v in lst[key]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", errors="replace")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return str(value["type"])
    return value


def decode_weights(entries: list[dict[str, Any]], data: bytes, where: str = "weights") -> dict[str, np.ndarray]:
    """Decode one manifest group's entries from its concatenated shard bytes.

    Parameters
    ----------
    entries : list of dict
        The group's ``weights`` entries (``name``, ``shape``, ``dtype``, optional ``quantization``).
    data : bytes
        The group's shards, concatenated in ``paths`` order.
    where : str
        How errors name the group.

    Returns
    -------
    dict of str to numpy.ndarray
        Float weights as float32 (uint8/uint16 dequantised as ``q * scale + min`` in float64 then
        rounded to float32, as tfjs stores them; float16 widened), ``int32`` and ``bool`` as such.

    Raises
    ------
    CheckpointError
        An unknown dtype, or bytes that end before the entries do (or are left over).
    """
    out: dict[str, np.ndarray] = {}
    offset = 0
    for e in entries:
        name, shape, dtype = e["name"], [int(s) for s in e.get("shape", [])], e.get("dtype", "float32")
        quant = e.get("quantization")
        stored = quant["dtype"] if quant else dtype
        if stored not in STORED_DTYPES or dtype not in ("float32", "int32", "bool"):
            raise CheckpointError(f"{where}: {name!r} has an unsupported dtype {stored!r} (stored) / {dtype!r}")
        np_dtype, width = STORED_DTYPES[stored]
        count = math.prod(shape)
        end = offset + count * width
        if end > len(data):
            raise CheckpointError(f"{where}: the weight data ends inside {name!r} ({len(data)} bytes, need {end})")
        raw = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset).reshape(shape)
        offset = end
        if quant and stored in ("uint8", "uint16"):
            value = (raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])).astype(np.float32)
            if dtype == "int32":
                value = np.round(value).astype(np.int32)
        elif stored == "float16":
            value = raw.astype(np.float32)
        elif dtype == "bool":
            value = raw.astype(bool)
        else:
            value = raw.astype(np.int32 if dtype == "int32" else np.float32)
        out[name] = value
    if offset != len(data):
        raise CheckpointError(f"{where}: {len(data) - offset} bytes left after the last weight (corrupt shard?)")
    return out


class TfjsGraph:
    """A tfjs graph model read from ``model.json`` and its weight shards.

    Parameters
    ----------
    model_json : path-like
        The ``model.json`` (any name); shard paths in its manifest are relative to its folder.

    Attributes
    ----------
    nodes : list of Node
        In file order.
    weights : dict of str to numpy.ndarray
        Every manifest weight, decoded (see :func:`decode_weights`).
    inputs, outputs : list of str
        Placeholder names; nodes no other node reads (the graph's outputs).

    Raises
    ------
    CheckpointError
        Unreadable JSON, not a graph model, a missing shard, a ``Const`` without a weight, or a
        node reading a node that does not exist.
    """

    def __init__(self, model_json: str | Path):
        self.path = Path(model_json)
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"cannot read the tfjs model {self.path}: {e}") from None
        topo = doc.get("modelTopology") if isinstance(doc, dict) else None
        if not isinstance(topo, dict) or "node" not in topo or "weightsManifest" not in doc:
            raise CheckpointError(f"{self.path.name} is not a tfjs graph model (no modelTopology.node / weightsManifest)")
        self.format = doc.get("format", "")
        self.metadata = {k: doc[k] for k in ("generatedBy", "convertedBy", "signature", "userDefinedMetadata") if k in doc}
        self.nodes = [
            Node(n["name"], n["op"], [i for i in n.get("input", []) if not i.startswith("^")],
                 {k: decode_attr(v) for k, v in n.get("attr", {}).items()})
            for n in topo["node"]
        ]  # fmt: skip
        self.by_name = {n.name: n for n in self.nodes}
        self.weights: dict[str, np.ndarray] = {}
        for group in doc["weightsManifest"]:
            parts = []
            for rel in group["paths"]:
                shard = self.path.parent / rel
                if not shard.is_file():
                    raise CheckpointError(f"{self.path.name}: weight shard {rel} missing")
                parts.append(shard.read_bytes())
            self.weights.update(decode_weights(group["weights"], b"".join(parts), f"{self.path.name}"))
        for n in self.nodes:
            if n.op == "Const" and n.name not in self.weights:
                raise CheckpointError(f"{self.path.name}: constant {n.name!r} has no weight in the manifest")
            for i in n.inputs:
                if _base(i) not in self.by_name:
                    raise CheckpointError(f"{self.path.name}: node {n.name!r} reads unknown node {i!r}")
        read = {_base(i) for n in self.nodes for i in n.inputs}
        self.inputs = [n.name for n in self.nodes if n.op == "Placeholder"]
        self.outputs = [n.name for n in self.nodes if n.name not in read and n.op not in ("Const", "Placeholder")]

    def order(self) -> list[Node]:
        """The nodes in an order where every node comes after the nodes it reads.

        Raises
        ------
        CheckpointError
            The graph has a cycle.
        """
        done: dict[str, bool] = {}  # name -> finished (False while on the stack)
        out: list[Node] = []
        for root in self.nodes:
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if expanded:
                    done[node.name] = True
                    out.append(node)
                    continue
                if node.name in done:
                    if not done[node.name]:
                        raise CheckpointError(f"{self.path.name}: the graph has a cycle through {node.name!r}")
                    continue
                done[node.name] = False
                stack.append((node, True))
                for i in reversed(node.inputs):
                    dep = self.by_name[_base(i)]
                    if dep.name in done and not done[dep.name]:
                        raise CheckpointError(f"{self.path.name}: the graph has a cycle through {dep.name!r}")
                    if dep.name not in done:
                        stack.append((dep, False))
        return out

    def ops(self) -> dict[str, int]:
        """Op name → number of nodes."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out

    def const(self, name: str) -> np.ndarray:
        """The value of constant ``name`` (:class:`CheckpointError` if there is none)."""
        if name not in self.weights:
            raise CheckpointError(f"{self.path.name}: no constant {name!r}")
        return self.weights[name]

    def consumers(self, name: str) -> list[Node]:
        """Nodes that read ``name``."""
        return [n for n in self.nodes if any(_base(i) == name for i in n.inputs)]


def _base(name: str) -> str:
    """Node name of an input reference (``"x:1"`` → ``"x"``)."""
    return name.split(":")[0]


# ---- the reference executor ---------------------------------------------------------------------
def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    eff = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _conv(x: torch.Tensor, w: torch.Tensor, attr: dict[str, Any], depthwise: bool) -> torch.Tensor:
    """TF ``Conv2D`` / ``DepthwiseConv2dNative`` on NHWC ``x`` with an HWIO (HWCM) filter."""
    if attr.get("data_format", "NHWC") != "NHWC":
        raise CheckpointError(f"unsupported data_format {attr.get('data_format')!r}")
    _, sh, sw, _ = attr.get("strides", [1, 1, 1, 1])
    _, dh, dw, _ = attr.get("dilations", [1, 1, 1, 1])
    kh, kw = w.shape[0], w.shape[1]
    xc = x.permute(0, 3, 1, 2)
    padding = attr.get("padding", "VALID")
    if padding == "SAME":
        top, bottom = _same_pads(xc.shape[2], kh, sh, dh)
        left, right = _same_pads(xc.shape[3], kw, sw, dw)
        xc = F.pad(xc, (left, right, top, bottom))
    elif padding == "EXPLICIT":
        p = attr.get("explicit_paddings", [])
        xc = F.pad(xc, (p[4], p[5], p[2], p[3]))
    elif padding != "VALID":
        raise CheckpointError(f"unsupported padding {padding!r}")
    if depthwise:  # (kh, kw, C, M) -> (C*M, 1, kh, kw)
        c, m = w.shape[2], w.shape[3]
        wt = w.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
        y = F.conv2d(xc, wt, stride=(sh, sw), dilation=(dh, dw), groups=c)
    else:
        y = F.conv2d(xc, w.permute(3, 2, 0, 1), stride=(sh, sw), dilation=(dh, dw))
    return y.permute(0, 2, 3, 1)


def _fused(y: torch.Tensor, node: Node, extra: list[torch.Tensor]) -> torch.Tensor:
    """Apply a fused op's ``fused_ops`` (BiasAdd, then an activation) with its extra inputs."""
    ops = list(node.attr.get("fused_ops", []))
    k = 0
    for op in ops:
        if op == "BiasAdd":
            y = y + extra[k]
            k += 1
        elif op == "Relu":
            y = F.relu(y)
        elif op == "Relu6":
            y = y.clamp(0.0, 6.0)
        elif op == "Prelu":
            alpha = extra[k]
            k += 1
            y = torch.where(y >= 0, y, y * alpha)
        elif op == "LeakyRelu":
            y = F.leaky_relu(y, float(node.attr.get("leakyrelu_alpha", 0.2)))
        elif op == "Sigmoid":
            y = torch.sigmoid(y)
        else:
            raise CheckpointError(f"{node.name}: unsupported fused op {op!r}")
    return y


def _axes(t: torch.Tensor, rank: int) -> list[int]:
    return [int(a) % rank for a in t.reshape(-1).tolist()]


def _binary(f):
    return lambda node, a: f(a[0], a[1])


def _unary(f):
    return lambda node, a: f(a[0])


def _reduce(kind: str):
    def run(node: Node, a: list[torch.Tensor]) -> torch.Tensor:
        axes = _axes(a[1], a[0].dim())
        keep = bool(node.attr.get("keep_dims", False))
        if not axes:
            return a[0]
        return a[0].sum(dim=axes, keepdim=keep) if kind == "sum" else a[0].mean(dim=axes, keepdim=keep)

    return run


def _squeeze(node: Node, a: list[torch.Tensor]) -> torch.Tensor:
    dims = node.attr.get("squeeze_dims", [])
    x = a[0]
    dims = sorted((d % x.dim() for d in dims), reverse=True) if dims else [i for i in range(x.dim() - 1, -1, -1) if x.shape[i] == 1]
    for d in dims:
        x = x.squeeze(d)
    return x


def _pad(node: Node, a: list[torch.Tensor]) -> torch.Tensor:
    p = a[1].reshape(-1, 2).tolist()
    flat = [int(v) for pair in reversed(p) for v in pair]
    value = float(a[2]) if len(a) > 2 else 0.0
    return F.pad(a[0], flat, value=value)


def _matmul(node: Node, a: list[torch.Tensor]) -> torch.Tensor:
    x, w = a[0], a[1]
    if node.attr.get("transpose_a", False):
        x = x.transpose(-1, -2)
    if node.attr.get("transpose_b", False):
        w = w.transpose(-1, -2)
    y = x @ w
    return _fused(y, node, a[2:]) if node.op == "_FusedMatMul" else y


def _conv_op(depthwise: bool):
    def run(node: Node, a: list[torch.Tensor]) -> torch.Tensor:
        y = _conv(a[0], a[1], node.attr, depthwise)
        return _fused(y, node, a[2:]) if node.op.startswith(("_Fused", "Fused")) else y

    return run


OPS = {
    "Identity": _unary(lambda x: x),
    "Conv2D": _conv_op(False),
    "_FusedConv2D": _conv_op(False),
    "DepthwiseConv2dNative": _conv_op(True),
    "FusedDepthwiseConv2dNative": _conv_op(True),
    "MatMul": _matmul,
    "_FusedMatMul": _matmul,
    "BiasAdd": _binary(torch.add),
    "Add": _binary(torch.add),
    "AddV2": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "RealDiv": _binary(torch.div),
    "Maximum": _binary(torch.maximum),
    "Minimum": _binary(torch.minimum),
    "Relu": _unary(F.relu),
    "Relu6": _unary(lambda x: x.clamp(0.0, 6.0)),
    "Abs": _unary(torch.abs),
    "Neg": _unary(torch.neg),
    "Square": _unary(torch.square),
    "Sqrt": _unary(torch.sqrt),
    "Rsqrt": _unary(torch.rsqrt),
    "Sigmoid": _unary(torch.sigmoid),
    "Sum": _reduce("sum"),
    "Mean": _reduce("mean"),
    "Squeeze": _squeeze,
    "Reshape": lambda node, a: a[0].reshape([int(v) for v in a[1].reshape(-1).tolist()]),
    "Pad": _pad,
    "Softmax": _unary(lambda x: torch.softmax(x, dim=-1)),
}
SUPPORTED_OPS = frozenset(OPS) | {"Const", "Placeholder"}
"""Ops :func:`run_graph` evaluates."""


@torch.no_grad()
def run_graph(graph: TfjsGraph, feeds: dict[str, torch.Tensor], outputs: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Evaluate ``graph`` on ``feeds`` (tensors in the graph's layout: images NHWC).

    Parameters
    ----------
    graph : TfjsGraph
    feeds : dict of str to torch.Tensor
        Placeholder name → value (float32).
    outputs : list of str, optional
        Node names to return (default: :attr:`TfjsGraph.outputs`).

    Returns
    -------
    dict of str to torch.Tensor
        Output node name → value, computed in float32 on the CPU.

    Raises
    ------
    CheckpointError
        An op outside :data:`SUPPORTED_OPS`, or a placeholder without a feed.
    """
    want = list(outputs or graph.outputs)
    values: dict[str, torch.Tensor] = {}
    for node in graph.order():
        if node.op == "Const":
            values[node.name] = torch.from_numpy(np.array(graph.weights[node.name]))
        elif node.op == "Placeholder":
            if node.name not in feeds:
                raise CheckpointError(f"no value fed for placeholder {node.name!r}")
            values[node.name] = feeds[node.name].float()
        elif node.op in OPS:
            args = [values[_base(i)] for i in node.inputs]
            values[node.name] = OPS[node.op](node, args)
        else:
            raise CheckpointError(f"{graph.path.name}: op {node.op!r} (node {node.name!r}) is not supported "
                                  f"(supported: {', '.join(sorted(SUPPORTED_OPS))})")  # fmt: skip
    missing = [o for o in want if o not in values]
    if missing:
        raise CheckpointError(f"{graph.path.name}: no node {missing[0]!r}")
    return {o: values[o] for o in want}
