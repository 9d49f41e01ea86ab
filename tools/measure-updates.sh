#!/usr/bin/env bash
# Updates at scale: build an index over N generated items (d = 64), add N/10 new items in batches
# of 1,000, remove N/20 of the original ones, then compare recall@100 of the tree against the exact
# scan, for queries aimed at the new items, with a fresh rebuild over the same final catalogue.
#
#   tools/measure-updates.sh [N=1000000] [WORK=/tmp/arbor-updates] [BEAM=400] [CHUNK=65536]
#
# Needs a release build (swift build -c release) and python3 with numpy. Prints the update
# command's batch times and file sizes, then both benchmarks' recall lines.
set -euo pipefail
N=${1:-1000000}
WORK=${2:-/tmp/arbor-updates}
BEAM=${3:-400}
CHUNK=${4:-65536}
ARBOR=${ARBOR:-$(pwd)/.build/release/arbor}
ADD=$((N / 10))
REMOVE=$((N / 20))
mkdir -p "$WORK"
cd "$WORK"
echo "== $(date -u +%FT%TZ) N=$N add=$ADD remove=$REMOVE beam=$BEAM chunk=$CHUNK"
"$ARBOR" generate --items $((N + ADD)) --users 200 --dim 64 --out data/ >/dev/null 2>&1
python3 - "$N" "$ADD" "$REMOVE" <<'EOF'
import sys, numpy as np
n, add, remove = map(int, sys.argv[1:])
v = np.load("data/items.npy")
ids = np.loadtxt("data/items.ids", dtype=np.uint64)
np.save("base.npy", v[:n]); np.savetxt("base.ids", ids[:n], fmt="%d")
np.save("new.npy", v[n:n + add]); np.savetxt("new.ids", ids[n:n + add], fmt="%d")
rng = np.random.default_rng(1)
gone = rng.choice(n, size=remove, replace=False)
np.savetxt("gone.ids", ids[gone], fmt="%d")
keep = np.ones(n + add, bool); keep[gone] = False
np.save("final.npy", v[keep]); np.savetxt("final.ids", ids[keep], fmt="%d")
# Queries aimed at the new items: 200 of them, each with a little noise.
pick = rng.choice(add, size=200, replace=False)
q = v[n + pick] + rng.normal(0, 0.05, size=(200, v.shape[1])).astype(np.float32)
np.save("queries.npy", q.astype(np.float32))
EOF
echo "-- build over $N items (slack 4, chunk $CHUNK bytes)"
/usr/bin/time -f "build wall %e s, max RSS %M KiB" "$ARBOR" build --vectors base.npy --ids base.ids --chunk-bytes "$CHUNK" --out updated.arbor 2>&1 | grep -v "^\s*$" | tail -3
echo "file after build: $(stat -c %s updated.arbor) bytes"
echo "-- add $ADD in batches of 1000"
"$ARBOR" update --index updated.arbor --add new.npy --ids new.ids --batch-size 1000
echo "-- remove $REMOVE in one batch"
"$ARBOR" update --index updated.arbor --remove gone.ids
"$ARBOR" inspect --index updated.arbor --verify | grep -E "format|after updates|balance|rebuild|verify"
echo "-- recall@100, tree (beam $BEAM) vs exact scan, updated index"
"$ARBOR" bench --index updated.arbor --queries queries.npy --beams "$BEAM" --k 100 --threads 1 2>/dev/null | grep -iE "recall|tree|exact" | head -12
echo "-- fresh rebuild over the final catalogue"
"$ARBOR" build --vectors final.npy --ids final.ids --chunk-bytes "$CHUNK" --out rebuilt.arbor 2>&1 | tail -2
"$ARBOR" bench --index rebuilt.arbor --queries queries.npy --beams "$BEAM" --k 100 --threads 1 2>/dev/null | grep -iE "recall|tree|exact" | head -12
echo "file sizes: updated $(stat -c %s updated.arbor), rebuilt $(stat -c %s rebuilt.arbor) bytes"
