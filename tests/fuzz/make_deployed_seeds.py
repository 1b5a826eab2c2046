#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_deployed: small export folders (subnet.json
and model.safetensors joined by the line --qnas-safetensors--) that pass
load_deployed()'s checks, one per feature of the format (int8 conv with packed
4-bit codes, a general grid, a transformer block). Standard library only.

    python3 tests/fuzz/make_deployed_seeds.py tests/fuzz/corpus/deployed
"""
import json
import struct
import sys
from pathlib import Path

SEPARATOR = b"\n--qnas-safetensors--\n"
DTYPE_BYTES = {"F32": 4, "I8": 1, "U8": 1}


def container(tensors):
    """tensors: [(name, dtype, shape)] -> safetensors bytes (zeros)."""
    header, offset = {"__metadata__": {"format": "qnas-deployed-graph"}}, 0
    for name, dtype, shape in tensors:
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"\0" * offset


def value(name, quantized=False):
    return {"name": name, "quantized": quantized, "qsource": "observed", "scale": 0.05, "zero_point": 3 if quantized else 0}


def layer(kind, name, inputs, output, bits, shape, int8=False, act="none", **extra):
    node = {"kind": kind, "name": name, "inputs": inputs, "output": output, "act": act, "int8": int8,
            "dynamic": False, "weight_bits": bits, "stride": 1, "padding": 1 if kind == "conv" else 0, "groups": 1,
            "weight_shape": shape}
    node.update(extra)
    return node


def node(kind, name, inputs, output, **extra):
    return dict({"kind": kind, "name": name, "inputs": inputs, "output": output, "act": "none"}, **extra)


def document(values, nodes, channels=1, size=6):
    return {"format": "qnas-deployed-graph", "version": 4, "spec": {"arch": {}, "policy": {}}, "model_bytes": 0,
            "graph": {"input": {"channels": channels, "height": size, "width": size, "mean": [0.5] * channels,
                                "std": [0.25] * channels, "value": 0},
                      "output": len(values) - 1, "values": values, "nodes": nodes}}


def packed(numel, bits):
    return (numel * bits + 7) // 8


def cnn(general):
    """quantize -> int8 conv (4-bit codes) -> dequantize -> mean -> linear."""
    values = [value("x"), value("xq", True), value("c0", True), value("c0f"), value("pool"), value("logits")]
    fc = layer("linear", "fc", [4], 5, 4 if general else 32, [10, 2],
               **({"weight_group": 2, "code_offset": 8} if general else {}))
    nodes = [node("quantize", "q0", [0], 1), layer("conv", "c0", [1], 2, 4, [2, 1, 3, 3], int8=True, act="relu"),
             node("dequantize", "dq0", [2], 3), node("mean", "pool", [3], 4), fc]
    tensors = [("c0.weight", "U8", [packed(18, 4)]), ("c0.weight_scale", "F32", [2]), ("c0.bias", "F32", [2]),
               ("fc.bias", "F32", [10])]
    tensors += ([("fc.weight", "U8", [packed(20, 4)]), ("fc.weight_scale", "F32", [10, 1]),
                 ("fc.weight_offset", "F32", [10, 1])] if general else [("fc.weight", "F32", [10, 2])])
    return document(values, nodes), tensors


def vit():
    """patch conv -> tokens -> embed -> LayerNorm -> qkv -> attention -> mean -> head."""
    values = [value(n) for n in ("x", "patch", "tok", "emb", "ln", "qkv", "att", "mean", "logits")]
    nodes = [layer("conv", "patch", [0], 1, 32, [4, 1, 2, 2], padding=0, stride=2), node("tokens", "tok", [1], 2),
             node("embed", "embed", [2], 3), node("layer_norm", "ln", [3], 4),
             layer("linear", "qkv", [4], 5, 32, [12, 4]), node("attention", "att", [5], 6, heads=2, head_dim=2),
             node("token_mean", "mean", [6], 7), layer("linear", "head", [7], 8, 32, [10, 4])]
    tensors = [("patch.weight", "F32", [4, 1, 2, 2]), ("patch.bias", "F32", [4]), ("embed.weight", "F32", [10, 4]),
               ("embed.bias", "F32", [4]), ("ln.weight", "F32", [4]), ("ln.bias", "F32", [4]),
               ("qkv.weight", "F32", [12, 4]), ("qkv.bias", "F32", [12]), ("head.weight", "F32", [10, 4]),
               ("head.bias", "F32", [10])]
    return document(values, nodes), tensors


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    for name, (doc, tensors) in {"cnn_int8": cnn(False), "cnn_general_grid": cnn(True), "vit": vit()}.items():
        (out / name).write_bytes(json.dumps(doc).encode() + SEPARATOR + container(tensors))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/deployed"))
