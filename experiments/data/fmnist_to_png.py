#!/usr/bin/env python3
"""Writes Fashion-MNIST's IDX files as a PNG class-folder tree for qnas's
folder reader (data.format: folder):

    OUT/train/<label>/<index>.png   the 60,000 training images
    OUT/test/<label>/<index>.png    the 10,000 test images

Python's standard library only (gzip, zlib, struct): 8-bit greyscale PNGs,
pixel for pixel the IDX bytes.

    /usr/bin/python3 experiments/data/fmnist_to_png.py /usr/share/datasets/fashion-mnist runs/fmnist_png
"""
import gzip
import os
import struct
import sys
import zlib


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png_bytes(pixels, height, width):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))  # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def find(src, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(src, name)):
            return os.path.join(src, name)
    sys.exit(f"fmnist_to_png: {src}: missing {stem}(.gz)")


def write_split(src, prefix, out):
    (n, h, w), pixels = read_idx(find(src, prefix + "-images-idx3-ubyte"))
    (n_labels,), labels = read_idx(find(src, prefix + "-labels-idx1-ubyte"))
    assert n == n_labels, f"{prefix}: {n} images, {n_labels} labels"
    for i in range(n):
        folder = os.path.join(out, str(labels[i]))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
            f.write(png_bytes(pixels[i * h * w:(i + 1) * h * w], h, w))
    return n


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    for prefix, split in (("train", "train"), ("t10k", "test")):
        n = write_split(src, prefix, os.path.join(out, split))
        print(f"fmnist_to_png: {n} images -> {os.path.join(out, split)}", file=sys.stderr)


if __name__ == "__main__":
    main()
