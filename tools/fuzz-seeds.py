#!/usr/bin/env python3
"""Writes the small seed corpora of tools/fuzz.sh into DIR/<target>/ (default Fuzz/corpus).

Text readers get the first lines of the shared data files (../shared/data, read in place); the
index target gets tiny indexes written by `arbor` (a plain one, one with an HNSW graph, one after
an update); npy and hnsw get a few hand-made inputs. Every seed is under 64 KiB.
Usage: tools/fuzz-seeds.py DIR [--arbor .build/release/arbor] [--data ../shared/data]
"""
import argparse, os, struct, subprocess, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--arbor", default=".build/release/arbor")
ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
a = ap.parse_args()


def head(path, lines):
    with open(os.path.join(a.data, path), "rb") as f:
        return b"".join(f.readline() for _ in range(lines))


def put(target, name, data):
    d = os.path.join(a.dir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


put("recbole", "ml-100k", head("ml-100k/ml-100k.inter", 12) + b"\0" + head("ml-100k/ml-100k.item", 8))
put("csv", "diginetica-views", head("diginetica-sample/sample_train-item-views.csv", 12))
put("csv", "ml-100k-inter", head("ml-100k/ml-100k.inter", 12))
put("taobao", "userbehavior", head("taobao-userbehavior-head/UserBehavior_head.csv", 16))
put("amazon", "train", head("amazon-books-demo/train_demo.txt", 3))
put("amazon", "valid", head("amazon-books-demo/valid_part-0.txt", 3))
put("sessions", "diginetica-split", head("diginetica-sample/diginetica.split.tsv", 16))
put("sessions", "yoochoose-split", head("yoochoose-rsc15-test/yoochoose.split.tsv", 16))
put("sessions", "leave-last-out", head("ml-100k/ml-100k.leave-last-out.tsv", 12))
put("sessions", "rsc15", head("yoochoose-rsc15-test/rsc15_test.txt", 12))


def npy(rows, cols, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%df" % len(values), *values)


put("npy", "3x2", npy(3, 2, [1, 2, 3, 4, 5, 6]))
put("npy", "1x4", npy(1, 4, [0.5, -1, 2.6e38, 0]))
put("npy", "empty", npy(0, 3, []))

# HNSW arrays: 3 nodes, M = 2, one layer (see runHNSW in Fuzz/Sources/ArborFuzz/Targets.swift).
lengths = [3, 12, 3, 0, 0, 3, 3, 6]
pre = struct.pack("<8H", *lengths) + bytes([2, 2, 0, 0, 0, 0, 0, 0])
body = struct.pack("<3i", 0, 0, 0) + struct.pack("<12i", 1, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0)
body += struct.pack("<3i", 2, 2, 2) + struct.pack("<3Q", 10, 11, 12) + bytes([0, 0, 0])
body += struct.pack("<6f", 1, 0, 0, 1, 0.7, 0.7)
put("hnsw", "three-nodes", pre + body)

# Parquet: the test fixtures (pyarrow and Spark, every encoding and page kind the reader knows).
fixtures = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "parquet")
for name in sorted(os.listdir(fixtures)):
    if name.endswith(".parquet") and name != "gzip.parquet":
        put("parquet", name[: -len(".parquet")], open(os.path.join(fixtures, name), "rb").read())

with tempfile.TemporaryDirectory() as t:
    arbor = os.path.abspath(a.arbor)
    def run(*args):
        subprocess.run([arbor] + list(args), check=True, capture_output=True)
    p = os.path.join(t, "plain.arbor")
    run("build", "--synthetic", "40", "--dim", "4", "--fan-out", "4", "--slack", "1", "--chunk-bytes", "256", "--out", p)
    put("index", "plain", open(p, "rb").read())
    g = os.path.join(t, "graph.arbor")
    run("build", "--synthetic", "30", "--dim", "4", "--fan-out", "4", "--hnsw", "--hnsw-m", "4", "--out", g)
    put("index", "with-graph", open(g, "rb").read())
    with open(os.path.join(t, "gone.ids"), "w") as f:
        f.write("3\n5\n7\n")
    run("update", "--index", p, "--remove", os.path.join(t, "gone.ids"))
    put("index", "updated", open(p, "rb").read())
print("seeds written to", a.dir)
