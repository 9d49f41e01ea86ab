#!/usr/bin/env python3
"""Where MIND's gap to the oracle goes, on generated users with planted interests.

Reads what `arbor train --model mind --synthetic N --diagnosis FILE --out DIR` wrote (FILE and
DIR/items.npy, the served item vectors in the dump's item order) and prints one table:

- user side: mean pairwise cosine of a test user's interests; for each interest the learned
  category centre (normalised mean of the learned item vectors of a category) nearest to it, and
  whether that category is planted for the user; how many planted interests some interest hits;
- item side: share of items whose nearest learned category centre is their own category; mean
  cosine of an item to its own centre against the nearest other centre;
- recall@50 (merged by best score per item, history excluded, scored on the item vectors as served)
  of MIND's interests, of MIND's
  interests each snapped to its nearest learned centre, and of the "oracle interests on the learned
  item vectors" (one query per planted interest: its learned centre).

Usage: tools/mind-diagnosis.py FILE ITEMS_NPY [--k 50]
"""
import argparse
import json

import numpy as np


def unit(m):
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def merged_recall(queries, items, history_rows, truth_rows, k):
    scores = (queries @ items.T).max(axis=0)
    scores[history_rows] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    return len(set(top.tolist()) & truth_rows) / max(1, len(truth_rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("items")
    ap.add_argument("--k", type=int, default=50)
    a = ap.parse_args()
    d = json.load(open(a.dump))
    raw = np.load(a.items).astype(np.float64)  # what the index scores (unit rows for a cosine model)
    x = unit(raw)
    cats = np.array(d["itemCategories"])
    row = {iid: r for r, iid in enumerate(d["items"])}
    ncat = int(cats.max()) + 1
    centres = np.zeros((ncat, x.shape[1]))
    for c in range(ncat):
        if (cats == c).any():
            centres[c] = x[cats == c].mean(axis=0)
    centres = unit(centres)
    # Item side.
    sim = x @ centres.T
    own = sim[np.arange(len(x)), cats]
    other = sim.copy()
    other[np.arange(len(x)), cats] = -np.inf
    item_acc = float((sim.argmax(axis=1) == cats).mean())
    # User side and recalls.
    pair, on_planted, coverage, best_cos, nint = [], [], [], [], []
    rec_mind, rec_snap, rec_oracle = [], [], []
    for u in d["users"]:
        served = np.array(u["interests"], dtype=np.float64)
        v = unit(served)
        planted = list(u["planted"])
        nint.append(len(v))
        if len(v) >= 2:
            g = v @ v.T
            pair.append(float(g[np.triu_indices(len(v), 1)].mean()))
        s = v @ centres.T
        nearest = s.argmax(axis=1)
        on_planted.append(float(np.isin(nearest, planted).mean()))
        coverage.append(len(set(nearest.tolist()) & set(planted)) / len(planted))
        best_cos.append(float(s[:, planted].max(axis=1).mean()))
        hist = [row[i] for i in u["history"] if i in row]
        truth = {row[i] for i in u["truth"] if i in row}
        rec_mind.append(merged_recall(served, raw, hist, truth, a.k))
        rec_snap.append(merged_recall(centres[np.unique(nearest)], raw, hist, truth, a.k))
        rec_oracle.append(merged_recall(centres[planted], raw, hist, truth, a.k))
    m = lambda v: float(np.mean(v))
    print("| measure | value |")
    print("|---|---|")
    print(f"| test users / mean K' / mean planted interests | {len(d['users'])} / {m(nint):.2f} / {m([len(u['planted']) for u in d['users']]):.2f} |")
    print(f"| user: mean pairwise cosine of a user's interests (K' >= 2) | {m(pair):.3f} |")
    print(f"| user: share of interests whose nearest learned category centre is planted | {m(on_planted):.3f} |")
    print(f"| user: share of planted interests that some interest is nearest to (coverage) | {m(coverage):.3f} |")
    print(f"| user: mean cosine of an interest to its best planted centre | {m(best_cos):.3f} |")
    print(f"| item: share of items nearest to their own category's learned centre | {item_acc:.3f} |")
    print(f"| item: mean cosine item-own centre / item-nearest other centre | {own.mean():.3f} / {other.max(axis=1).mean():.3f} |")
    print(f"| recall@{a.k}: MIND's interests (flat scan, merged) | {m(rec_mind):.4f} |")
    print(f"| recall@{a.k}: MIND's interests snapped to their nearest learned centre | {m(rec_snap):.4f} |")
    print(f"| recall@{a.k}: oracle interests (planted categories' learned centres) on the learned items | {m(rec_oracle):.4f} |")


if __name__ == "__main__":
    main()
