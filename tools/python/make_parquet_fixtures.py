#!/usr/bin/env python3
"""Writes the Parquet fixtures of ParquetFileTests into Tests/Fixtures/parquet (a few KB each).

Each NAME.parquet has NAME.expected.tsv beside it: a header of column names, then one line a row,
values as Arbor's test prints them (integers; floats that are exact in binary, e.g. 2.5; strings;
`null`; lists as [a,b]). Written by pyarrow, except spark-*.parquet, written by Spark itself:
spark-paths.parquet and spark-paths.tsv are tools/spark/build_tree.py's two outputs for the same
64 items (spark-items.npy), and spark-nodes.parquet is a node-embedding table (node: string,
vector: array<float>) with the same vectors as spark-nodes.tsv.

    /work/.venv-torch/bin/python tools/python/make_parquet_fixtures.py   # needs pyarrow, pyspark, Java 17
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "parquet")
os.makedirs(OUT, exist_ok=True)


def render(v):
    if v is None:
        return "null"
    if isinstance(v, list):
        return "[" + ",".join(render(x) for x in v) + "]"
    return str(v)


def write(name, table, **options):
    pq.write_table(table, os.path.join(OUT, name + ".parquet"), **options)
    rows = table.to_pylist()
    with open(os.path.join(OUT, name + ".expected.tsv"), "w") as f:
        f.write("\t".join(table.column_names) + "\n")
        for r in rows:
            f.write("\t".join(render(r[c]) for c in table.column_names) + "\n")


N = 16
items = [100 + 7 * i for i in range(N)]
paths = [f"{i // 4}/{i % 4}" for i in range(N)]          # a full tree: fan-out 4, depth 2
score = [i * 0.5 for i in range(N)]
weight = [i - 2.5 for i in range(N)]
group = ["abc"[i % 3] * (1 + i % 2) for i in range(N)]   # few distinct strings: a real dictionary


def table(item_type=pa.int64(), nullable=True, **columns):
    fields = [pa.field("item", item_type, nullable), pa.field("path", pa.string(), nullable)]
    data = [items, paths]
    for name, (t, values) in columns.items():
        fields.append(pa.field(name, t, nullable))
        data.append(values)
    return pa.table(data, schema=pa.schema(fields))


extra = {"score": (pa.float64(), score), "weight": (pa.float32(), weight), "group": (pa.string(), group)}
# Required columns, no compression, PLAIN values.
write("plain", table(nullable=False, **extra), compression="none", use_dictionary=False)
# Optional columns, snappy and dictionary pages (pyarrow's defaults).
write("snappy-dict", table(**extra), compression="snappy")
# Data page v2 with nulls in one column.
write("v2", table(score=(pa.float64(), [None if i % 5 == 1 else s for i, s in enumerate(score)]), group=(pa.string(), group)),
      compression="snappy", data_page_version="2.0")
# Several row groups, several pages per chunk.
write("row-groups", table(**extra), compression="snappy", row_group_size=5, data_page_size=32, write_batch_size=2)
# INT32 item ids.
write("int32", table(item_type=pa.int32(), group=(pa.string(), group)), compression="snappy")
# An optional item column with a null (row 4), for the assignment's error path.
write("nulls", pa.table({"item": pa.array([None if i == 3 else v for i, v in enumerate(items)], pa.int64()),
                         "path": pa.array(paths)}), compression="snappy")
# No path column.
pq.write_table(pa.table({"item": pa.array([1, 2, 3], pa.int64())}), os.path.join(OUT, "items-only.parquet"), compression="snappy")
# A codec the reader refuses.
write("gzip", table(), compression="gzip")
# List columns: a list, an empty list, a null list, a null element.
write("lists", pa.table({"node": pa.array(["", "0", "1", "2"]),
                         "vector": pa.array([[1.0, 2.0], [], None, [3.0, None, 4.5]], pa.list_(pa.float32()))}),
      compression="snappy")
# An assignment with the path as a list of child indices.
write("path-lists", pa.table({"item": pa.array(items, pa.int64()),
                              "path": pa.array([[i // 4, i % 4] for i in range(N)], pa.list_(pa.int32()))}), compression="snappy")

# Spark: build_tree.py on 64 items (d = 4, fan-out 4) writing Parquet and text; a node table.
python = sys.executable
rng = np.random.default_rng(7)
vectors = rng.normal(size=(64, 4)).astype(np.float32)
np.save(os.path.join(OUT, "spark-items.npy"), vectors)
job = os.path.join(ROOT, "tools", "spark", "build_tree.py")
for out in ("spark-paths.parquet", "spark-paths.tsv"):
    subprocess.run([python, job, "--vectors", os.path.join(OUT, "spark-items.npy"), "--fan-out", "4", "--out",
                    os.path.join(OUT, out)], check=True)
from_parquet = sorted((r["item"], r["path"]) for r in pq.read_table(os.path.join(OUT, "spark-paths.parquet")).to_pylist())
with open(os.path.join(OUT, "spark-paths.tsv")) as f:
    from_text = sorted((int(a), b) for a, b in (line.rstrip("\n").split("\t") for line in list(f)[1:]))
assert from_parquet == from_text, "the job's Parquet and text assignments differ"

from pyspark.sql import SparkSession  # noqa: E402

spark = SparkSession.builder.master("local[1]").appName("arbor-fixtures").config("spark.ui.showConsoleProgress", "false").getOrCreate()
nodes = [("", [0.0, 0.0, 0.0, 0.0])] + [(str(c), [float(c), 0.5, -0.25, 1.0]) for c in range(4)]
with tempfile.TemporaryDirectory() as t:
    spark.createDataFrame(nodes, "node string, vector array<float>").coalesce(1).write.mode("overwrite").parquet(t + "/nodes")
    part = [f for f in os.listdir(t + "/nodes") if f.startswith("part-")][0]
    os.replace(os.path.join(t, "nodes", part), os.path.join(OUT, "spark-nodes.parquet"))
spark.stop()
with open(os.path.join(OUT, "spark-nodes.tsv"), "w") as f:
    for node, v in nodes:
        f.write(node + "\t" + ",".join(str(x) for x in v) + "\n")
rows = pq.read_table(os.path.join(OUT, "spark-nodes.parquet")).to_pylist()
with open(os.path.join(OUT, "spark-nodes.expected.tsv"), "w") as f:
    f.write("node\tvector\n")
    for r in rows:
        f.write(r["node"] + "\t" + render(r["vector"]) + "\n")
print("fixtures written to", os.path.normpath(OUT))
