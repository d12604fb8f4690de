"""Write a small MobileStyleGAN as OpenVINO IR v10 (XML + .bin), the way the random-face wheel stores it.

Test helper: the converter reads this IR back (round trip) and, when OpenVINO is
installed, OpenVINO runs it against the PyTorch module. The graph follows the
wheel's: named modulation constants, modulation scales as separate multiplies,
demodulation folded into the pointwise weights, fixed noise as constants, PReLU
activations, and the inverse Haar DWT as transposed grouped convolutions.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN

Port = tuple[int, int, tuple[int, ...], str]  # (layer id, port id, shape, precision)
_PREC = {np.dtype(np.float32): ("f32", "FP32"), np.dtype(np.int64): ("i64", "I64")}


class IRWriter:
    """Accumulates layers, edges and the constant blob of one IR graph."""

    def __init__(self, name: str):
        self.name = name
        self.layers: list[ET.Element] = []
        self.edges: list[tuple[int, int, int, int]] = []
        self.blob = bytearray()

    def _layer(self, type_: str, name: str | None, attrs: dict[str, str], inputs: list[Port],
               outputs: list[tuple[tuple[int, ...], str]]) -> list[Port]:  # fmt: skip
        lid = len(self.layers)
        el = ET.Element("layer", id=str(lid), name=name or f"{type_}_{lid}", type=type_, version="opset1")
        if attrs:
            ET.SubElement(el, "data", attrs)
        if inputs:
            ins = ET.SubElement(el, "input")
            for k, (_, _, shape, prec) in enumerate(inputs):
                port = ET.SubElement(ins, "port", id=str(k), precision=prec)
                for d in shape:
                    ET.SubElement(port, "dim").text = str(d)
        outs = ET.SubElement(el, "output")
        result = []
        for k, (shape, prec) in enumerate(outputs):
            pid = len(inputs) + k
            port = ET.SubElement(outs, "port", id=str(pid), precision=prec)
            for d in shape:
                ET.SubElement(port, "dim").text = str(d)
            result.append((lid, pid, tuple(shape), prec))
        if not outputs:
            el.remove(outs)
        for k, (src, sport, _, _) in enumerate(inputs):
            self.edges.append((src, sport, lid, k))
        self.layers.append(el)
        return result

    def const(self, a: np.ndarray, name: str | None = None) -> Port:
        a = np.ascontiguousarray(a)
        et, prec = _PREC[a.dtype]
        offset = len(self.blob)
        self.blob += a.tobytes()
        attrs = {"element_type": et, "shape": ", ".join(str(d) for d in a.shape), "offset": str(offset),
                 "size": str(a.nbytes)}  # fmt: skip
        return self._layer("Const", name, attrs, [], [(a.shape, prec)])[0]

    def param(self, name: str, shape: tuple[int, ...]) -> Port:
        return self._layer("Parameter", name, {"shape": ", ".join(map(str, shape)), "element_type": "f32"}, [],
                           [(shape, "FP32")])[0]  # fmt: skip

    def op(self, type_: str, inputs: list[Port], shape: tuple[int, ...], attrs: dict[str, str] | None = None,
           name: str | None = None) -> Port:  # fmt: skip
        return self._layer(type_, name, attrs or {}, inputs, [(shape, "FP32")])[0]

    def multi(self, type_: str, inputs: list[Port], shapes: list[tuple[int, ...]]) -> list[Port]:
        return self._layer(type_, None, {}, inputs, [(s, "FP32") for s in shapes])

    def result(self, x: Port, name: str) -> None:
        self._layer("Result", f"{name}/sink_port_0", {}, [x], [])

    # composite helpers ------------------------------------------------------------------------------
    def binary(self, type_: str, a: Port, b: Port, shape: tuple[int, ...]) -> Port:
        return self.op(type_, [a, b], shape, {"auto_broadcast": "numpy"})

    def reshape(self, x: Port, shape: tuple[int, ...]) -> Port:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64))], shape, {"special_zero": "true"})

    def conv(self, x: Port, w: Port, shape: tuple[int, ...], pad: int, grouped: bool = False) -> Port:
        attrs = {"strides": "1, 1", "dilations": "1, 1", "pads_begin": f"{pad}, {pad}", "pads_end": f"{pad}, {pad}",
                 "auto_pad": "explicit"}  # fmt: skip
        return self.op("GroupConvolution" if grouped else "Convolution", [x, w], shape, attrs)

    def up(self, x: Port, taps: tuple[float, float], axis: int) -> Port:
        n, c, h, w = x[2]
        kshape = (c, 1, 1, 2, 1) if axis == 2 else (c, 1, 1, 1, 2)
        k = self.const(np.broadcast_to(np.array(taps, np.float32).reshape(1, 1, 1, *kshape[3:]), kshape).copy())
        out = (n, c, 2 * h, w) if axis == 2 else (n, c, h, 2 * w)
        attrs = {"strides": "2, 1" if axis == 2 else "1, 2", "pads_begin": "0, 0", "pads_end": "0, 0",
                 "dilations": "1, 1", "auto_pad": "explicit", "output_padding": "0, 0"}  # fmt: skip
        return self.op("GroupConvolutionBackpropData", [x, k], out, attrs)

    def idwt(self, x: Port) -> Port:
        """(1, 4C, H, W) -> (1, C, 2H, 2W), bands split as MobileStyleGAN does."""
        n, c4, h, w = x[2]
        c = c4 // 4
        low, high = self.multi("VariadicSplit", [x, self.const(np.array(1, np.int64)),
                                                 self.const(np.array([c, 3 * c], np.int64))],
                               [(n, c, h, w), (n, 3 * c, h, w)])  # fmt: skip
        high = self.reshape(high, (n, c, 3, h, w))
        bands = self.multi("VariadicSplit", [high, self.const(np.array(2, np.int64)),
                                             self.const(np.array([1, 1, 1], np.int64))], [(n, c, 1, h, w)] * 3)
        b = [self.op("Squeeze", [p, self.const(np.array([2], np.int64))], (n, c, h, w)) for p in bands]
        s = 1 / math.sqrt(2)
        lo_t, hi_t = (s, s), (s, -s)
        lo = self.binary("Add", self.up(low, lo_t, 2), self.up(b[0], hi_t, 2), (n, c, 2 * h, w))
        hi = self.binary("Add", self.up(b[1], lo_t, 2), self.up(b[2], hi_t, 2), (n, c, 2 * h, w))
        return self.binary("Add", self.up(lo, lo_t, 3), self.up(hi, hi_t, 3), (n, c, 2 * h, 2 * w))

    def write(self, xml_path: Path, bin_path: Path) -> None:
        net = ET.Element("net", name=self.name, version="10")
        layers = ET.SubElement(net, "layers")
        layers.extend(self.layers)
        edges = ET.SubElement(net, "edges")
        for a, ap, b, bp in self.edges:
            ET.SubElement(edges, "edge", {"from-layer": str(a), "from-port": str(ap), "to-layer": str(b),
                                          "to-port": str(bp)})  # fmt: skip
        ET.ElementTree(net).write(xml_path)
        Path(bin_path).write_bytes(bytes(self.blob))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy().astype(np.float32)


def write_mapping(g: MobileStyleGAN, xml_path: Path, bin_path: Path) -> None:
    """Write ``g.mapping_net`` as ``MappingNetwork``: pixel norm, then MatMul/Add/PReLU/Multiply per layer."""
    ir = IRWriter("MappingNetwork")
    z = g.z_dim
    x = ir.param("var", (1, z))
    sq = ir.binary("Power", x, ir.const(np.array([[2.0]], np.float32)), (1, z))
    mean = ir.op("ReduceMean", [sq, ir.const(np.array([1], np.int64))], (1, 1), {"keep_dims": "true"})
    eps = ir.binary("Add", mean, ir.const(np.array([[1e-8]], np.float32)), (1, 1))
    inv = ir.binary("Power", eps, ir.const(np.array([[-0.5]], np.float32)), (1, 1))
    x = ir.binary("Multiply", x, inv, (1, z))
    for layer in g.mapping_net.layers:
        d = layer.weight.shape[0]
        x = ir.op("MatMul", [x, ir.const(_np(layer.weight))], (1, d), {"transpose_a": "false", "transpose_b": "true"})
        x = ir.binary("Add", x, ir.reshape(ir.const(_np(layer.bias)), (1, d)), (1, d))
        x = ir.op("PReLU", [x, ir.const(np.array([0.2], np.float32))], (1, d))
        x = ir.binary("Multiply", x, ir.const(np.array([[math.sqrt(2.0)]], np.float32)), (1, d))
    ir.result(x, "style")
    ir.write(xml_path, bin_path)


def write_synthesis(g: MobileStyleGAN, xml_path: Path, bin_path: Path) -> None:
    """Write the synthesis of ``g`` (without exits) as ``SynthesisNetwork`` with the wheel's names."""
    ir = IRWriter("SynthesisNetwork")
    style = ir.param("style", (1, g.w_dim))

    def modulated(x: Port, mod: torch.nn.Module, prefix: str) -> Port:
        c = mod.weight.shape[0]
        m = ir.op("MatMul", [style, ir.const(_np(mod.weight), f"{prefix}.modulation.weight")], (1, c),
                  {"transpose_a": "false", "transpose_b": "true"})  # fmt: skip
        m = ir.binary("Add", m, ir.const(_np(mod.bias).reshape(1, c), f"{prefix}.modulation.bias"), (1, c))
        m = ir.reshape(m, (1, c, 1, 1))
        if mod.scale != 1.0:
            m = ir.binary("Multiply", m, ir.const(np.full((1, 1, 1, 1), mod.scale, np.float32)), (1, c, 1, 1))
        return ir.binary("Multiply", m, x, x[2])

    def styled(x: Port, conv: torch.nn.Module, prefix: str) -> Port:
        x = modulated(x, conv.modulation, f"{prefix}.conv")
        n, c, h, w = x[2]
        if conv.depthwise:
            x = ir.conv(x, ir.const(_np(conv.weight_dw).reshape(c, 1, 1, 3, 3), f"{prefix}.conv.weight_dw"),
                        (n, c, h, w), 1, grouped=True)  # fmt: skip
            c_out = conv.weight_pw.shape[0]
            x = ir.conv(x, ir.const(_np(conv.weight_pw)), (n, c_out, h, w), 0)
        else:
            c_out = conv.weight.shape[0]
            x = ir.conv(x, ir.const(_np(conv.weight)), (n, c_out, h, w), 1)
        x = ir.binary("Add", x, ir.const(_np(conv.noise)), (n, c_out, h, w))
        x = ir.binary("Add", x, ir.const(_np(conv.bias).reshape(1, c_out, 1, 1), f"{prefix}.bias"), (n, c_out, h, w))
        return ir.op("PReLU", [x, ir.const(np.array([0.2], np.float32))], (n, c_out, h, w))

    x = ir.const(_np(g.input), "m.input.input")
    x = styled(x, g.conv1, "m.conv1")
    for i, block in enumerate(g.layers):
        x = ir.idwt(modulated(x, block.up.modulation, f"m.layers.{i}.up"))
        x = styled(x, block.conv1, f"m.layers.{i}.conv1")
        x = styled(x, block.conv2, f"m.layers.{i}.conv2")
    last = len(g.layers) - 1
    x = modulated(x, g.to_img.modulation, f"m.layers.{last}.to_img.conv")
    n, _, h, w = x[2]
    x = ir.conv(x, ir.const(_np(g.to_img.weight), f"m.layers.{last}.to_img.conv.weight"), (n, 12, h, w), 0)
    x = ir.binary("Add", x, ir.const(_np(g.to_img.bias).reshape(1, 12, 1, 1), f"m.layers.{last}.to_img.bias"),
                  (n, 12, h, w))  # fmt: skip
    ir.result(ir.idwt(x), "img")
    ir.write(xml_path, bin_path)


def write_ir(g: MobileStyleGAN, folder: Path) -> dict[str, Path]:
    """Write both networks into ``folder``; returns the four paths keyed like the wheel's file names."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {n: folder / n for n in ("MappingNetwork.xml", "MappingNetwork.bin", "SynthesisNetwork.xml",
                                      "SynthesisNetwork.bin")}  # fmt: skip
    write_mapping(g, files["MappingNetwork.xml"], files["MappingNetwork.bin"])
    write_synthesis(g, files["SynthesisNetwork.xml"], files["SynthesisNetwork.bin"])
    return files
