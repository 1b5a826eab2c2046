#!/usr/bin/env python3
"""Spec files for measuring what precision changes cost on the int8 runtime.

Writes, for the largest subnet of the quickstart space (or the space that
`qnas info CONFIG --format json` lists), all-int8 specs with fp32 islands of
growing size: one layer, one block, one stage, and every other layer (the
most Quantize/Dequantize nodes a layer-wise policy can make). Timed side by
side by experiments/simqnas/transitions.sh.

  transitions.py INFO_JSON OUT_DIR
"""
import json
import os
import sys


def main():
    info, out = sys.argv[1], sys.argv[2]
    rows = json.load(open(info))
    arch, layers = {}, []
    for r in rows:
        name = r["variable"]
        if name.endswith(".weight_bits"):
            layers.append(name[: -len(".weight_bits")])
        elif not name.endswith((".act_bits", ".method")):
            arch[name] = max(json.loads(r["choices"]))
    os.makedirs(out, exist_ok=True)

    def spec(island):
        policy = {l: {"weight_bits": 8, "act_bits": 32 if island(l) else 8, "method": "rtn"} for l in layers}
        return {"supernet": "mbv3", "arch": arch, "policy": policy}

    mid = [l for l in layers if l.startswith("s1.b0.")]
    variants = {
        "island_layer": lambda l: l == "s1.b0.dw",
        "island_block": lambda l: l in mid,
        "island_stage": lambda l: l.startswith("s1."),
        "alternating": lambda l: layers.index(l) % 2 == 1,
    }
    for name, island in variants.items():
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(spec(island), f, indent=1)
        print(os.path.join(out, name + ".json"))


if __name__ == "__main__":
    main()
