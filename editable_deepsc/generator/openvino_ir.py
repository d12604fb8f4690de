"""A small reader of OpenVINO IR v10 files (``.xml`` graph + ``.bin`` constants) in NumPy.

Only what the FFHQ converter needs: the layers with their types, attributes and
output shapes, the edges between them, and the constants, read from the ``.bin``
file at the offsets the XML gives. No OpenVINO runtime is needed.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from editable_deepsc.errors import CheckpointError

_DTYPES = {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32, "u8": np.uint8, "i8": np.int8}


@dataclass
class IRLayer:
    """One node of the graph.

    Attributes
    ----------
    id : int
        Layer id in the XML.
    name : str
        Layer name (PyTorch parameter names survive on named constants).
    type : str
        Operation type: ``Const``, ``MatMul``, ``Convolution``, ``PReLU``, ...
    attrs : dict of str to str
        The ``<data>`` attributes.
    inputs : list of (int, int)
        ``(producer layer id, producer port)`` per input port, in port order.
    out_shapes : list of tuple of int
        Shape of each output port.
    """

    id: int
    name: str
    type: str
    attrs: dict[str, str]
    inputs: list[tuple[int, int]] = field(default_factory=list)
    out_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_ports: list[int] = field(default_factory=list)


class IRGraph:
    """A parsed IR: layers by id, consumers, named look-up and constant values.

    Parameters
    ----------
    xml_path, bin_path : path-like
        The two files of the IR.
    """

    def __init__(self, xml_path: str | os.PathLike, bin_path: str | os.PathLike):
        self.xml_path, self.bin_path = Path(xml_path), Path(bin_path)
        try:
            root = ET.parse(self.xml_path).getroot()
        except (OSError, ET.ParseError) as e:
            raise CheckpointError(f"cannot read OpenVINO IR {self.xml_path}: {e}") from None
        self.layers: dict[int, IRLayer] = {}
        for el in root.find("layers"):
            data = el.find("data")
            layer = IRLayer(int(el.get("id")), el.get("name", ""), el.get("type"), dict(data.attrib) if data is not None else {})
            out = el.find("output")
            for port in out if out is not None else []:
                layer.out_ports.append(int(port.get("id")))
                layer.out_shapes.append(tuple(int(d.text) for d in port.findall("dim")))
            self.layers[layer.id] = layer
        in_ports: dict[int, dict[int, tuple[int, int]]] = {}
        self.consumers: dict[int, list[int]] = {i: [] for i in self.layers}
        for e in root.find("edges"):
            src, dst = int(e.get("from-layer")), int(e.get("to-layer"))
            src_port = self.layers[src].out_ports.index(int(e.get("from-port")))
            in_ports.setdefault(dst, {})[int(e.get("to-port"))] = (src, src_port)
            self.consumers[src].append(dst)
        for lid, ports in in_ports.items():
            self.layers[lid].inputs = [ports[k] for k in sorted(ports)]
        self._by_name = {layer.name: layer for layer in self.layers.values()}
        self._blob = np.memmap(self.bin_path, dtype=np.uint8, mode="r") if self.bin_path.stat().st_size else np.zeros(0, np.uint8)

    def named(self, name: str) -> IRLayer:
        """The layer called ``name`` (raises :class:`CheckpointError` if absent)."""
        if name not in self._by_name:
            raise CheckpointError(f"{self.xml_path.name}: no layer named {name!r}")
        return self._by_name[name]

    def has(self, name: str) -> bool:
        """Whether a layer called ``name`` exists."""
        return name in self._by_name

    def const(self, layer: IRLayer | int) -> np.ndarray:
        """Value of a ``Const`` layer as a NumPy array of its declared shape and dtype (a copy)."""
        layer = self.layers[layer] if isinstance(layer, int) else layer
        if layer.type != "Const":
            raise CheckpointError(f"{self.xml_path.name}: layer {layer.name!r} is a {layer.type}, not a constant")
        a = layer.attrs
        dtype = _DTYPES[a["element_type"]]
        offset, size = int(a["offset"]), int(a["size"])
        if offset + size > self._blob.size:
            raise CheckpointError(f"{self.bin_path.name}: constant {layer.name!r} lies past the end of the file")
        shape = tuple(int(s) for s in a["shape"].split(",") if s.strip()) if a.get("shape", "").strip() else ()
        return np.frombuffer(self._blob[offset : offset + size].tobytes(), dtype=dtype).reshape(shape).copy()

    def input_layer(self, layer: IRLayer, port: int) -> IRLayer:
        """The layer feeding input ``port`` of ``layer``."""
        return self.layers[layer.inputs[port][0]]

    def const_input(self, layer: IRLayer) -> np.ndarray:
        """The single constant among the inputs of ``layer`` (e.g. the weight of a convolution)."""
        consts = [self.layers[i] for i, _ in layer.inputs if self.layers[i].type == "Const"]
        if len(consts) != 1:
            raise CheckpointError(f"{self.xml_path.name}: {layer.type} {layer.name!r} has {len(consts)} constant inputs, expected 1")
        return self.const(consts[0])

    def next_of(self, layer: IRLayer, *types: str) -> IRLayer:
        """The unique consumer of ``layer`` whose type is in ``types`` (shape plumbing is skipped)."""
        found = [self.layers[i] for i in self.consumers[layer.id] if self.layers[i].type in types]
        if len(found) != 1:
            raise CheckpointError(
                f"{self.xml_path.name}: expected one {'/'.join(types)} after {layer.name!r}, found {len(found)}"
            )
        return found[0]

    def of_type(self, type_: str) -> list[IRLayer]:
        """All layers of one operation type, in id order."""
        return [layer for _, layer in sorted(self.layers.items()) if layer.type == type_]
