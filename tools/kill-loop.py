#!/usr/bin/env python3
"""Kill `arbor update` and `arbor build` with SIGKILL at random moments and count what is left.

Each round starts a real process on a scratch index, kills it after a random delay (0 to a bit more
than its usual run time), then opens the index with `arbor inspect --verify` and classifies it:

  update rounds (N batches, each one write transaction):
    before   the index as it was (generation g0)
    between  after some whole batches: generation g0 + j, with the item count batch j implies
    after    every batch committed
  build rounds (a build of 3000 items over an index of 2000):
    old      the old index (the new one was not renamed in yet)
    new      the new index
  unreadable   inspect --verify failed, or the item count does not match the generation
               (a torn state). Must be zero.

Usage: tools/kill-loop.py [--rounds 200] [--arbor .build/release/arbor] [--seed 1] [--dir DIR]
Prints one line per 20 rounds and a summary; exits 1 if any index was unreadable.
"""
import argparse
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time


def write_npy(path, rows, cols, rng):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % (rows * cols), *[rng.uniform(-1, 1) for _ in range(rows * cols)]))


def inspect(arbor, index):
    r = subprocess.run([arbor, "inspect", "--index", index, "--verify"], capture_output=True, text=True)
    if r.returncode != 0 or "verify: every checksum matches" not in r.stdout:
        return None
    items = int(re.search(r"^items (\d+),", r.stdout, re.M).group(1))
    m = re.search(r"after updates: items (\d+), generation (\d+)", r.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (items, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--arbor", default=".build/release/arbor")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    arbor = os.path.abspath(args.arbor)
    rng = random.Random(args.seed)
    work = args.dir or tempfile.mkdtemp(prefix="arbor-kill-loop-")
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, "base.arbor")
    index = os.path.join(work, "index.arbor")
    subprocess.run([arbor, "build", "--synthetic", "2000", "--dim", "16", "--chunk-bytes", "4096", "--out", base],
                   check=True, capture_output=True)
    batches, per = 8, 25
    add = os.path.join(work, "add.npy")
    write_npy(add, batches * per, 16, rng)
    ids = os.path.join(work, "add.ids")
    with open(ids, "w") as f:
        f.write("".join("%d\n" % (500000 + i) for i in range(batches * per)))
    gone = os.path.join(work, "gone.ids")
    with open(gone, "w") as f:
        f.write("".join("%d\n" % i for i in range(0, 400, 4)))  # 100 removals, with the first batch
    removed = 100

    def expected_items(generation):
        return 2000 if generation == 0 else 2000 - removed + per * generation

    def fresh():
        shutil.copyfile(base, index)
        if os.path.exists(index + "-lock"):
            os.remove(index + "-lock")

    # Usual run times, to spread the kills over the whole run.
    fresh()
    t = time.time()
    subprocess.run([arbor, "update", "--index", index, "--add", add, "--ids", ids, "--remove", gone,
                    "--batch-size", str(per)], check=True, capture_output=True)
    update_time = time.time() - t
    t = time.time()
    subprocess.run([arbor, "build", "--synthetic", "3000", "--dim", "16", "--out", index], check=True, capture_output=True)
    build_time = time.time() - t
    print("update of %d batches: %.2f s; build: %.2f s; kills spread over 0 ... 1.2x that" % (batches, update_time, build_time))

    counts = {}
    for r in range(args.rounds):
        fresh()
        kind = "update" if r % 2 == 0 else "build"
        if kind == "update":
            cmd = [arbor, "update", "--index", index, "--add", add, "--ids", ids, "--remove", gone, "--batch-size", str(per)]
            delay = rng.uniform(0, 1.2 * update_time)
        else:
            cmd = [arbor, "build", "--synthetic", "3000", "--dim", "16", "--out", index]
            delay = rng.uniform(0, 1.2 * build_time)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        p.wait()
        state = inspect(arbor, index)
        if state is None:
            outcome = "unreadable"
        elif kind == "update":
            items, generation = state
            if items != expected_items(generation) or generation > batches:
                outcome = "unreadable"
            else:
                outcome = "before" if generation == 0 else ("after" if generation == batches else "between")
        else:
            outcome = {2000: "old", 3000: "new"}.get(state[0], "unreadable")
        key = (kind, outcome, "killed" if killed else "finished")
        counts[key] = counts.get(key, 0) + 1
        if (r + 1) % 20 == 0:
            print("%d rounds: %s" % (r + 1, ", ".join("%s %s (%s) %d" % (k + (v,)) for k, v in sorted(counts.items()))))
            sys.stdout.flush()
    kills = sum(v for k, v in counts.items() if k[2] == "killed")
    unreadable = sum(v for k, v in counts.items() if k[1] == "unreadable")
    print("summary: %d rounds, %d processes killed, %d unreadable indexes" % (args.rounds, kills, unreadable))
    for k, v in sorted(counts.items()):
        print("  %-6s %-10s %-8s %d" % (k + (v,)))
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
