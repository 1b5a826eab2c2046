#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_cifar: CIFAR folders packed as the target
unpacks them (a flags byte, then length-prefixed sections: class names, the
training batch or batches, the test batch), one per layout the reader takes.
Standard library only.

    python3 tests/fuzz/make_cifar_seeds.py tests/fuzz/corpus/cifar
"""
import struct
import sys
from pathlib import Path

PIXELS = 3 * 32 * 32


def batch(labels):
    """labels: one tuple of label bytes per record -> the batch's bytes."""
    out = bytearray()
    for i, record in enumerate(labels):
        out += bytes(record) + bytes((i * 37 + j) % 256 for j in range(PIXELS))
    return bytes(out)


def pack(flags, *sections):
    out = bytearray([flags])
    for s in sections:
        out += struct.pack("<I", len(s)) + s
    return bytes(out)


SEEDS = {
    "cifar10_one_batch": pack(0, b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
                              batch([(3,), (9,)]), batch([(0,)])),
    "cifar10_two_batches": pack(4, b"", batch([(1,)]), batch([(2,)]), batch([(7,)])),
    "cifar100_fine": pack(1, b"apple\nbee\n", batch([(4, 40), (19, 99)]), batch([(0, 7)])),
    "cifar100_coarse": pack(3, b"fish\n", batch([(19, 3)]), batch([(2, 5)])),
    "cifar10_test_is_a_folder": pack(8, b"", batch([(1,)])),
    "cifar10_truncated": pack(0, b"", batch([(1,)])[:-5], batch([(1,)])),
}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main()
