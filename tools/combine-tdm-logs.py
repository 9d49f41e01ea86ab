#!/usr/bin/env python3
"""Combine the logs of several `arbor tdm --methods ...` runs (e.g. seeds split over two processes)
into one table: per row the mean recall@10/@50 with the 95% interval of the mean (Student's t), the
best tree model over the two-tower, each tree over brute force with its own model, and each
method's training samples/s and wall seconds per seed.

    python3 tools/combine-tdm-logs.py run-a.log run-b.log
    python3 tools/combine-tdm-logs.py run-a.log "OTM+future=run-c.log"   # that log's OTM rows renamed

Only seeds whose "== seed N ==" section is in a log count (several seeds per run); a row is
averaged over the seeds that have it.
"""
import math
import re
import sys
from collections import defaultdict

T = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]


def interval(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, m, m
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    h = (T[n - 2] if n - 2 < len(T) else 1.96) * sd / math.sqrt(n)
    return m, m - h, m + h


def fmt(xs, digits=4):
    m, lo, hi = interval(xs)
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})" if len(xs) > 1 else f"{m:.{digits}f}"


result = re.compile(r"([^|]+?): R@10 ([0-9.]+) R@50 ([0-9.]+)")
per_seed = defaultdict(dict)      # seed -> method -> (r10, r50)
cost = defaultdict(lambda: defaultdict(list))  # (method kind) -> seconds / sps lists
order = []
pop_means = defaultdict(list)
for arg in sys.argv[1:]:
    label, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
    seed = None
    sps = defaultdict(list)
    for line in open(path, errors="replace"):
        line = line.strip()
        m = re.match(r"== seed (\d+) ==", line)
        if m:
            seed = int(m.group(1))
            continue
        if seed is None:
            continue
        if "R@10" in line and "R@50" in line and not line.startswith("["):
            for part in line.split(" | "):
                r = result.match(part.strip())
                if r:
                    name = r.group(1).strip()
                    if label and name.startswith("OTM "):
                        name = label + " " + name[4:]
                    per_seed[seed][name] = (float(r.group(2)), float(r.group(3)))
                    if name not in order:
                        order.append(name)
        m = re.match(r"\| popularity \| ([0-9.]+)[^|]*\| ([0-9.]+)", line)
        if m:  # the table after each seed holds the running mean over the seeds so far
            k = len(pop_means[path]) + 1
            means = (float(m.group(1)), float(m.group(2)))
            prev = pop_means[path][-1] if pop_means[path] else (0.0, 0.0)
            pop_means[path].append(means)
            per_seed[seed]["popularity"] = tuple(k * a - (k - 1) * b for a, b in zip(means, prev))
            if "popularity" not in order:
                order.append("popularity")
            continue
        m = re.match(r"\[([a-z -]+)\] round \d+: .*", line)
        if m:
            if label and m.group(1).startswith("otm "):
                line = line.replace("[otm ", "[" + label.lower() + " ", 1)
                m = re.match(r"\[([a-z+ -]+)\] round \d+: .*", line)
            sps[m.group(1)] += [float(x) for x in re.findall(r"([0-9.]+) samples/s", line)]
        m = re.match(r"\[([a-z -]+)\] best round \d+, (\d+) s", line)
        if m and label and m.group(1).startswith("otm "):
            line = line.replace("[otm ", "[" + label.lower() + " ", 1)
            m = re.match(r"\[([a-z+ -]+)\] best round \d+, (\d+) s", line)
        if m:
            tag = m.group(1)
            xs = sps.pop(tag, [])
            cost[tag]["seconds"].append(float(m.group(2)))
            if xs:  # equal samples per epoch: samples / busy time = harmonic mean
                cost[tag]["sps"].append(len(xs) / sum(1 / x for x in xs))

seeds = sorted(per_seed)
print(f"{len(seeds)} seeds: {', '.join(map(str, seeds))}\n")
print("| method | seeds | recall@10 (95% interval) | recall@50 (95% interval) |")
print("|---|---|---|---|")
for name in order:
    xs = [per_seed[s][name] for s in seeds if name in per_seed[s]]
    print(f"| {name} | {len(xs)} | {fmt([x[0] for x in xs])} | {fmt([x[1] for x in xs])} |")

two = "flat product-DNN: two-tower (exact IP)"
trees = [n for n in order if "tree + " in n]
mean10 = lambda n: sum(per_seed[s][n][0] for s in seeds if n in per_seed[s]) / max(1, sum(n in per_seed[s] for s in seeds))
print()
for k, label in [(0, "recall@10"), (1, "recall@50")]:
    for n in sorted(trees, key=mean10, reverse=True)[:3]:
        rs = [per_seed[s][n][k] / per_seed[s][two][k] for s in seeds if n in per_seed[s] and two in per_seed[s]]
        if rs:
            print(f"- {n} / two-tower, {label} ({len(rs)} seeds): {fmt(rs, 3)}; per seed " + ", ".join(f"{r:.3f}" for r in rs))
brute = {"product-DNN": "flat TDM product model (exact IP)", "DNN": "brute force DNN", "attention-DNN": "brute force attention-DNN"}
for n in trees:
    prefix, kind = n.split("tree + ")
    b = prefix + brute[kind]
    r10 = [per_seed[s][n][0] / per_seed[s][b][0] for s in seeds if n in per_seed[s] and b in per_seed[s] and per_seed[s][b][0] > 0]
    r50 = [per_seed[s][n][1] / per_seed[s][b][1] for s in seeds if n in per_seed[s] and b in per_seed[s] and per_seed[s][b][1] > 0]
    if r10:
        print(f"- {n} / {b} ({len(r10)} seeds): recall@10 {fmt(r10, 3)}, recall@50 {fmt(r50, 3)}")
# Each method against TDM with the same scorer, seed by seed.
for n in trees:
    prefix, kind = n.split("tree + ")
    if not prefix:
        continue
    base = "tree + " + kind
    for k, label in [(0, "recall@10"), (1, "recall@50")]:
        rs = [per_seed[s][n][k] / per_seed[s][base][k] for s in seeds
              if n in per_seed[s] and base in per_seed[s] and per_seed[s][base][k] > 0]
        if rs:
            print(f"- {n} / {base}, {label} ({len(rs)} seeds): {fmt(rs, 3)}")
print()
print("| model | training samples/s | wall s per seed (training, validation, tree rebuilds) |")
print("|---|---|---|")
for tag, c in cost.items():
    print(f"| {tag if ' ' in tag else 'tdm ' + tag} | {sum(c['sps']) / max(1, len(c['sps'])):.0f} | {sum(c['seconds']) / len(c['seconds']):.0f} |")
