"""Builds Arbor's balanced hierarchical k-means tree on Spark and writes the item -> path assignment
that `arbor build --assignment` reads.

    python tools/spark/build_tree.py --vectors items.npy --ids items.ids --fan-out 16 --out paths.tsv
    arbor build --vectors items.npy --ids items.ids --assignment paths.tsv --fan-out 16 --out items.arbor

The tree is the one TreeBuilder.balancedKMeans builds: depth D = ceil(log_k N); every node of N_p
items splits into min(k, N_p) groups whose sizes differ by at most one, fitted by k-means and then
balanced (all (item, centre) pairs taken by increasing distance while the centre has room, as Arbor's
BalancedKMeans does for k > 2; for k = 2 the median split of the distance difference). A path lists
the child index taken at each of the D levels.

Level by level: nodes of at least --mllib-min items fit their centres with MLlib's distributed
KMeans (one fit per node, on a sample of at most --sample items); smaller nodes fit them inside a
pandas UDF (numpy Lloyd iterations on the node's items). The balancing step runs per node in a
grouped pandas UDF (one node's items in one task: at most N / k^level rows).

On a cluster: the same script with `spark-submit --master yarn|k8s://...|spark://host:7077` and
--vectors / --out on shared storage (the vectors as a Parquet table of (id, vector) with
--parquet instead of .npy); the output is then a folder of part files (`cat part-*` or Spark's own
`coalesce(1)`), read by `arbor build --assignment` on the machine that writes the index.
With `--out paths.parquet` the assignment is a Parquet table (columns item: long, path: string;
Spark's writer, snappy) in one file, which `arbor build --assignment` reads as it reads the text.
"""
import argparse
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeans
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import SparkSession, functions as F, types as T


def balanced_sizes(n, k):
    q, r = divmod(n, k)
    return [q + 1 if i < r else q for i in range(k)]


def balanced_assign(points, centres):
    """Group of each point, sizes as balanced_sizes(n, k) (Arbor's BalancedKMeans rule)."""
    n, k = points.shape[0], centres.shape[0]
    sizes = balanced_sizes(n, k)
    dist = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2) if n * k <= 4_000_000 else \
        (points ** 2).sum(1)[:, None] - 2 * points @ centres.T + (centres ** 2).sum(1)[None, :]
    if k == 2:
        order = np.argsort(dist[:, 0] - dist[:, 1], kind="stable")
        out = np.ones(n, dtype=np.int64)
        out[order[: sizes[0]]] = 0
        return out
    pairs = np.argsort(dist, axis=None, kind="stable")
    out = np.full(n, -1, dtype=np.int64)
    room = np.array(sizes)
    left = n
    for flat in pairs:
        i, c = divmod(int(flat), k)
        if out[i] < 0 and room[c] > 0:
            out[i] = c
            room[c] -= 1
            left -= 1
            if left == 0:
                break
    return out


def lloyd(points, k, iterations, seed):
    """Balanced k-means centres on `points` (k-means++ start, balanced assignment each round)."""
    rng = np.random.default_rng(seed)
    n = points.shape[0]
    centres = [points[rng.integers(n)]]
    for _ in range(1, k):
        d = np.min(((points[:, None, :] - np.array(centres)[None]) ** 2).sum(2), axis=1)
        p = d / d.sum() if d.sum() > 0 else None
        centres.append(points[rng.choice(n, p=p)])
    centres = np.array(centres)
    for _ in range(iterations):
        groups = balanced_assign(points, centres)
        new = np.array([points[groups == c].mean(0) for c in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vectors", required=True, help="float32 .npy, N x d (or a Parquet table with --parquet)")
    p.add_argument("--ids", help="item ids, one a line (default 0 ..< N)")
    p.add_argument("--parquet", action="store_true", help="--vectors is a Parquet table of (id: long, vector: array<float>)")
    p.add_argument("--fan-out", type=int, default=16)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--sample", type=int, default=32768, help="points per MLlib fit at most")
    p.add_argument("--mllib-min", type=int, default=50000, help="nodes with at least this many items fit with MLlib")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[2])")
    p.add_argument("--out", required=True,
                   help="the assignment to write: item<TAB>path text, or a Parquet table (item: long, path: string) "
                        "when the name ends in .parquet")
    args = p.parse_args()
    if not 2 <= args.fan_out <= 64:
        raise SystemExit("--fan-out must be in 2 ... 64")
    start = time.time()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)   # workers run this interpreter (numpy, pandas, pyarrow)
    builder = SparkSession.builder
    if args.master or "PYSPARK_GATEWAY_PORT" not in os.environ:   # under spark-submit the gateway is up
        builder = builder.master(args.master or "local[2]")
    spark = (builder.appName("arbor-build-tree")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "6g").getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    if args.parquet:
        items = spark.read.parquet(args.vectors)
    else:
        vectors = np.load(args.vectors).astype(np.float32)
        ids = np.loadtxt(args.ids, dtype=np.int64, ndmin=1) if args.ids else np.arange(vectors.shape[0], dtype=np.int64)
        if ids.shape[0] != vectors.shape[0]:
            raise SystemExit(f"{args.ids} has {ids.shape[0]} ids, {args.vectors} {vectors.shape[0]} rows")
        frame = pd.DataFrame({"id": ids, "vector": list(vectors)})
        items = spark.createDataFrame(frame, schema="id long, vector array<float>").repartition(args.partitions)
    n = items.count()
    k = args.fan_out
    depth = max(0, math.ceil(math.log(n, k) - 1e-12)) if n > 1 else 0
    items = items.withColumn("path", F.lit("")).withColumn("node", F.lit(0).cast("long")).cache()
    to_ml = F.udf(lambda v: Vectors.dense(v), VectorUDT())
    mllib_seconds = 0.0
    for level in range(depth):
        sizes = {r["path"]: r["count"] for r in items.groupBy("path").count().collect()}
        centres = {}
        t = time.time()
        for path, size in sizes.items():
            if size >= args.mllib_min:
                node = items.filter(F.col("path") == path)
                fraction = min(1.0, args.sample / size)
                sample = node.sample(fraction=fraction, seed=args.seed + level) if fraction < 1 else node
                model = KMeans(k=k, maxIter=args.iterations, seed=args.seed + level, featuresCol="features") \
                    .fit(sample.select(to_ml("vector").alias("features")))
                centres[path] = np.array([c for c in model.clusterCenters()], dtype=np.float32)
        mllib_seconds += time.time() - t
        shared = spark.sparkContext.broadcast(centres)
        iterations, seed = args.iterations, args.seed

        def split(frame: pd.DataFrame) -> pd.DataFrame:
            path = frame["path"].iloc[0]
            count = len(frame)
            if count == 1:
                child = np.zeros(1, dtype=np.int64)
            else:
                points = np.stack(frame["vector"].to_numpy()).astype(np.float64)
                groups = min(k, count)
                c = shared.value.get(path)
                if c is None or c.shape[0] != groups:
                    c = lloyd(points, groups, iterations, seed + level)
                child = balanced_assign(points, c.astype(np.float64))
            prefix = path + "/" if path else ""
            return pd.DataFrame({"id": frame["id"].to_numpy(), "vector": frame["vector"],
                                 "path": [prefix + str(int(x)) for x in child], "node": np.zeros(count, dtype=np.int64)})

        items = items.groupBy("path").applyInPandas(split, schema="id long, vector array<float>, path string, node long").cache()
        print(f"level {level + 1}/{depth}: {len(sizes)} nodes split ({len(centres)} with MLlib), {time.time() - start:.0f} s",
              flush=True)
    folder = tempfile.mkdtemp(prefix="arbor-tree-")
    table = items.select(F.col("id").alias("item"), "path").coalesce(1).write.mode("overwrite")
    parquet = args.out.endswith(".parquet")
    if parquet:   # Spark's own writer (snappy by default), one part file moved to --out
        table.parquet(folder)
    else:
        table.option("sep", "\t").csv(folder)
    part = [f for f in os.listdir(folder) if f.startswith("part-")][0]
    if parquet:
        shutil.move(os.path.join(folder, part), args.out)
    else:
        with open(args.out, "w") as out:
            out.write("item\tpath\n")
            with open(os.path.join(folder, part)) as f:
                shutil.copyfileobj(f, out)
    shutil.rmtree(folder)
    spark_master = spark.sparkContext.master
    spark.stop()
    print(f"wrote {args.out}: {n} items, fan-out {k}, depth {depth}; {time.time() - start:.1f} s in all "
          f"({mllib_seconds:.1f} s in MLlib fits); master {spark_master}, {args.partitions} partitions, "
          f"{args.iterations} iterations, sample {args.sample}")


if __name__ == "__main__":
    main()
