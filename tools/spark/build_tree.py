"""Builds Arbor's balanced hierarchical k-means tree on Spark and writes the item -> path assignment
that `arbor build --assignment` reads.

    python tools/spark/build_tree.py --vectors items.npy --ids items.ids --fan-out 16 --out paths.tsv
    arbor build --vectors items.npy --ids items.ids --assignment paths.tsv --fan-out 16 --out items.arbor

The tree is the one TreeBuilder.balancedKMeans builds: depth D = ceil(log_k N); every node of N_p
items splits into min(k, N_p) groups whose sizes differ by at most one, with centres fitted by
k-means and a balanced assignment (Arbor's BalancedKMeans rule: for k > 2, points in order of regret,
the gap between their best and second-best centre, each take the closest centre with room; for k = 2
the median split of the cost difference). A path lists the child index taken at each of the D levels.

Top levels, while some node has at least --mllib-min items: one pass over the table per level; each
large node's centres are fitted by MLlib's distributed KMeans on a sample of at most --sample items;
in a grouped pandas UDF, they start balanced Lloyd rounds on a sample of the node, and the balanced
assignment runs per node (one node's items in one task: at
most N / k^level rows). Below that, every node is small, and one more grouped pass builds each node's
whole subtree inside its task (numpy: k-means++ and balanced Lloyd rounds on a sample, recursively).

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
import zlib

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeans
from pyspark.ml.functions import array_to_vector
from pyspark.sql import SparkSession, functions as F, types as T


def balanced_sizes(n, k):
    q, r = divmod(n, k)
    return [q + 1 if i < r else q for i in range(k)]


def balanced_assign(points, centres):
    """Group of each point, sizes as balanced_sizes(n, k): Arbor's BalancedKMeans rule, vectorised.

    k = 2: the median split of the cost difference. k > 2: points in order of regret (the gap between
    their best and second-best centre, largest first, ties by index) each take their closest centre
    that still has room. Done in rounds: until the next centre fills, every point in order simply
    takes its closest open centre, so each round assigns the prefix up to that point at once
    (at most k rounds, O(n * k) numpy work each)."""
    n, k = points.shape[0], centres.shape[0]
    sizes = balanced_sizes(n, k)
    cost = (centres ** 2).sum(1)[None, :] - 2.0 * (points @ centres.T)
    if k == 2:
        order = np.argsort(cost[:, 0] - cost[:, 1], kind="stable")
        out = np.ones(n, dtype=np.int64)
        out[order[: sizes[0]]] = 0
        return out
    two = np.partition(cost, 1, axis=1)
    order = np.argsort(-(two[:, 1] - two[:, 0]), kind="stable")
    ranked = cost[order]
    room = np.array(sizes, dtype=np.int64)
    taken = np.empty(n, dtype=np.int64)
    start = 0
    while start < n:
        best = np.where(room[None, :] > 0, ranked[start:], np.inf).argmin(axis=1)
        end = len(best)                      # assign best[:end]: nothing fills before position end - 1
        for c in np.flatnonzero(room > 0):
            wanting = np.flatnonzero(best == c)
            if len(wanting) >= room[c]:
                end = min(end, int(wanting[room[c] - 1]) + 1)
        taken[start:start + end] = best[:end]
        room -= np.bincount(best[:end], minlength=k)
        start += end
    out = np.empty(n, dtype=np.int64)
    out[order] = taken
    return out


def fit_centres(points, k, iterations, rng, sample_limit, start=None):
    """Balanced k-means centres: k-means++ on a sample of at most sample_limit points (or the given
    `start` centres, e.g. MLlib's), then Lloyd rounds with the balanced assignment until it stops
    changing (as BalancedKMeans.assign)."""
    n = points.shape[0]
    sample = points[rng.choice(n, sample_limit, replace=False)] if n > sample_limit else points
    m = sample.shape[0]
    if start is not None:
        centres = np.array(start, dtype=np.float64)
    else:
        centres = [sample[rng.integers(m)]]
        nearest = ((sample - centres[0]) ** 2).sum(1)
        for _ in range(1, k):
            total = nearest.sum()
            centres.append(sample[rng.choice(m, p=nearest / total) if total > 0 else rng.integers(m)])
            nearest = np.minimum(nearest, ((sample - centres[-1]) ** 2).sum(1))
        centres = np.array(centres)
    groups = None
    for _ in range(max(1, iterations)):
        new = balanced_assign(sample, centres)
        if groups is not None and np.array_equal(new, groups):
            break
        groups = new
        counts = np.bincount(groups, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, groups, sample)
        centres = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
    return centres


def split_node(points, k, iterations, rng, sample_limit, start=None):
    """Child index of each of a node's points: min(k, n) balanced groups. `start`: initial centres
    (MLlib's plain k-means centres of a large node), refined by balanced Lloyd rounds here, since
    plain k-means groups are unbalanced and the balanced assignment would otherwise push many
    points far from their centre."""
    n = points.shape[0]
    if n <= k:                               # one item per child (BalancedKMeans: groups 0 ..< n)
        return np.arange(n, dtype=np.int64)
    if start is not None and start.shape[0] != k:
        start = None
    centres = fit_centres(points, k, iterations, rng, sample_limit, start)
    return balanced_assign(points, centres.astype(np.float64))


def subtree_paths(points, levels, k, iterations, rng, sample_limit):
    """The child index at each of the next `levels` levels for every point of one node: n x levels,
    splitting recursively down to the leaves inside one task."""
    out = np.zeros((points.shape[0], levels), dtype=np.int64)
    if levels == 0 or points.shape[0] <= 1:
        return out
    child = split_node(points, k, iterations, rng, sample_limit)
    out[:, 0] = child
    if levels > 1:
        for c in range(int(child.max()) + 1):
            rows = np.flatnonzero(child == c)
            out[rows, 1:] = subtree_paths(points[rows], levels - 1, k, iterations, rng, sample_limit)
    return out


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
             .config("spark.sql.shuffle.partitions", str(args.partitions))
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
    iterations, seed, sample_limit = args.iterations, args.seed, args.sample
    mllib_seconds = 0.0
    level = 0
    sizes = {r["path"]: r["count"] for r in items.groupBy("path").count().collect()}
    # Levels whose largest node has at least --mllib-min items: one pass over the table per level, the
    # centres of large nodes fitted by MLlib on a sample, the balanced assignment per node in a task.
    while level < depth and max(sizes.values()) >= args.mllib_min:
        centres = {}
        t = time.time()
        for path, size in sizes.items():
            if size >= args.mllib_min:
                node = items.filter(F.col("path") == path)
                fraction = min(1.0, args.sample / size)
                sample = node.sample(fraction=fraction, seed=args.seed + level) if fraction < 1 else node
                model = KMeans(k=k, maxIter=args.iterations, seed=args.seed + level, featuresCol="features") \
                    .fit(sample.select(array_to_vector("vector").alias("features")))
                centres[path] = np.array([c for c in model.clusterCenters()], dtype=np.float32)
        mllib_seconds += time.time() - t
        shared = spark.sparkContext.broadcast(centres)
        this_level = level

        def split(frame: pd.DataFrame) -> pd.DataFrame:
            path = frame["path"].iloc[0]
            points = np.stack(frame["vector"].to_numpy()).astype(np.float64)
            rng = np.random.default_rng([seed, this_level, zlib.crc32(path.encode())])
            child = split_node(points, k, iterations, rng, sample_limit, shared.value.get(path))
            prefix = path + "/" if path else ""
            return pd.DataFrame({"id": frame["id"].to_numpy(), "vector": frame["vector"],
                                 "path": [prefix + str(int(x)) for x in child], "node": np.zeros(len(frame), dtype=np.int64)})

        items = items.groupBy("path").applyInPandas(split, schema="id long, vector array<float>, path string, node long").cache()
        level += 1
        sizes = {r["path"]: r["count"] for r in items.groupBy("path").count().collect()}
        print(f"level {level}/{depth}: {len(sizes)} nodes ({len(centres)} split with MLlib centres), {time.time() - start:.0f} s",
              flush=True)
    # The remaining levels: every node is small, so one task per node builds its whole subtree (numpy).
    remaining = depth - level

    def finish(frame: pd.DataFrame) -> pd.DataFrame:
        path = frame["path"].iloc[0]
        points = np.stack(frame["vector"].to_numpy()).astype(np.float64)
        rng = np.random.default_rng([seed, depth, zlib.crc32(path.encode())])
        below = subtree_paths(points, remaining, k, iterations, rng, sample_limit)
        prefix = [path] if path else []
        return pd.DataFrame({"id": frame["id"].to_numpy(),
                             "path": ["/".join(prefix + [str(int(x)) for x in row]) for row in below]})

    if remaining > 0:
        items = items.groupBy("path").applyInPandas(finish, schema="id long, path string")
    print(f"levels {level + 1}-{depth}: subtrees of {len(sizes)} nodes built in one pass each", flush=True)
    folder = tempfile.mkdtemp(prefix="arbor-tree-")
    # repartition(1), not coalesce(1): a coalesce would pull the UDF pass above into one task.
    table = items.select(F.col("id").alias("item"), "path").repartition(1).write.mode("overwrite")
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
