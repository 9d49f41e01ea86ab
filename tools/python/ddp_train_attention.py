"""Trains TDM's attention-DNN with PyTorch DistributedDataParallel, then serves it from an Arbor index.

The path for training on many machines: the same script with more processes (and another
--init-method) on a cluster. Here: 2 processes on this machine, gloo backend, CPU.

    arbor split --inter ml-100k.inter --items ml-100k.item --seed 0 --out split/       # TDM protocol users
    arbor export --index tdm/attention.arbor --out tree.safetensors                   # a tree to train on
    python tools/python/ddp_train_attention.py --split split/ --tree tree.safetensors \\
        --out torch-attention.safetensors --index torch-attention.arbor --arbor .build/release/arbor

What it does:
1. every process reads the training users (train.txt) and the tree (tree.* tensors of the export);
   samples are TDM's sliding window (the last --history behaviours before each event, the event as
   target); each process takes every world-size-th sample of a shuffled order;
2. the model is arbor_torch.AttentionScorer plus one node-embedding table per level, trained from
   scratch with TDM's loss (the target's ancestor on every level a positive, random nodes of the
   level negatives, summed binary cross-entropy), Adam; DDP averages the gradients;
3. rank 0 writes the model and the tree with the new node embeddings (save_model), runs
   `arbor import` into --index, and computes recall@10/@50 of the test users through the tree
   (`arbor query --history ... --beam B`) for the imported index and, with --compare, for another.
"""
import argparse
import os
import random
import subprocess
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arbor_torch as at  # noqa: E402


def read_split(folder):
    items = [int(line.split("\t")[0]) for line in open(os.path.join(folder, "items.tsv")) if line.strip()]
    train = [[int(x) for x in line.split()] for line in open(os.path.join(folder, "train.txt")) if line.strip()]

    def users(name):
        out = []
        for line in open(os.path.join(folder, name)):
            if not line.strip():
                continue
            h, t = line.rstrip("\n").split("\t")
            out.append(([int(x) for x in h.split()], [int(x) for x in t.split()]))
        return out
    return items, train, users("validation.tsv"), users("test.tsv")


class Tree:
    """The exported tree: per level its node count and each node's parent; the leaf of each item."""

    def __init__(self, path):
        self.spec, t = at.load_tree(path)
        if self.spec is None:
            raise SystemExit(f"{path} holds no tree: export it without --model-only")
        self.levels = self.spec["levels"]
        self.depth = len(self.levels) - 1
        self.tensors = t
        self.parent = [None]
        for level in range(1, self.depth + 1):
            offsets = t[f"tree.level.{level - 1}.offsets"].tolist()
            parent = [0] * self.levels[level]
            for node in range(self.levels[level - 1]):
                for child in range(offsets[node], offsets[node + 1]):
                    parent[child] = node
            self.parent.append(parent)
        self.leaf_of = {int(v): i for i, v in enumerate(t["tree.leaf-items"].tolist())}

    def ancestors(self, item):
        """Node index of the item's ancestor on levels 1 ... depth (the leaf last)."""
        node = self.leaf_of[item]
        out = [0] * (self.depth + 1)
        for level in range(self.depth, 0, -1):
            out[level] = node
            node = self.parent[level][node]
        return out[1:]


def negatives_per_level(total, levels):
    """About `total` negatives over levels 1 ... depth, level l's share proportional to l, at least 1,
    at most the level size minus one (as Arbor's TDMNegatives.about)."""
    depth = len(levels) - 1
    weight = sum(range(1, depth + 1))
    return [min(levels[l] - 1, max(1, round(total * l / weight))) for l in range(1, depth + 1)]


class TDMAttention(nn.Module):
    def __init__(self, scorer: at.AttentionScorer, levels, dimension, seed):
        super().__init__()
        self.scorer = scorer
        g = torch.Generator().manual_seed(seed + 1)
        self.nodes = nn.ParameterList([nn.Parameter((torch.rand(n, dimension, generator=g) * 2 - 1) * 0.1) for n in levels])

    def forward(self, rows, node_level, node_index, labels):
        table = torch.cat(list(self.nodes))
        starts = torch.tensor([0] + [p.shape[0] for p in self.nodes]).cumsum(0)[:-1]
        nodes = table[starts[node_level] + node_index]                 # [B, m, d]
        logits = self.scorer(rows, nodes)                                # [B, m]
        return nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / rows.shape[0]


def worker(rank, args, port):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.processes)
    torch.manual_seed(args.seed)
    items, train, _, _ = read_split(args.split)
    tree = Tree(args.tree)
    d = int(tree.tensors["tree.level.0.embeddings"].shape[1])
    scorer = at.AttentionScorer.create(d, items, max_history=args.history, positions=False, seed=args.seed)
    model = TDMAttention(scorer, tree.levels, d, args.seed)
    ddp = DDP(model)
    embedding_params = [model.nodes[i] for i in range(len(tree.levels))] + [scorer.t("behaviour.embeddings")]
    ids = {id(p) for p in embedding_params}
    dense_params = [p for p in model.parameters() if id(p) not in ids]
    optimizer = torch.optim.Adam([{"params": dense_params, "lr": args.lr}, {"params": embedding_params, "lr": args.sparse_lr}])

    samples = []
    for seq in train:
        for t in range(1, len(seq)):
            if seq[t] in tree.leaf_of:
                samples.append((seq[max(0, t - args.history): t], seq[t]))
    if args.samples_per_epoch:
        per_epoch = min(args.samples_per_epoch, len(samples))
    else:
        per_epoch = len(samples)
    negatives = negatives_per_level(args.negatives, tree.levels)
    rng = random.Random(args.seed * 1000 + rank)
    if rank == 0:
        print(f"{len(samples)} samples, {per_epoch} an epoch over {args.processes} processes; tree levels {tree.levels}; "
              f"negatives per level {negatives}", flush=True)
    start = time.time()
    for epoch in range(args.epochs):
        order = list(range(len(samples)))
        random.Random(args.seed + epoch).shuffle(order)
        mine = order[:per_epoch][rank::args.processes]
        local_batch = args.batch // args.processes
        steps = len(mine) // local_batch
        total, seen = 0.0, 0
        for step in range(steps):
            batch = [samples[i] for i in mine[step * local_batch:(step + 1) * local_batch]]
            rows = scorer.pad([scorer.history_rows(h) for h, _ in batch])
            level_ids, node_ids, labels = [], [], []
            for _, target in batch:
                pos = tree.ancestors(target)
                lv, nd, lb = [], [], []
                for level in range(1, tree.depth + 1):
                    lv.append(level); nd.append(pos[level - 1]); lb.append(1.0)
                    for _ in range(negatives[level - 1]):
                        n = rng.randrange(tree.levels[level] - 1)
                        n = n + 1 if n >= pos[level - 1] else n
                        lv.append(level); nd.append(n); lb.append(0.0)
                level_ids.append(lv); node_ids.append(nd); labels.append(lb)
            loss = ddp(rows, torch.tensor(level_ids), torch.tensor(node_ids), torch.tensor(labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
            if rank == 0 and step % 100 == 0:
                print(f"epoch {epoch + 1} step {step}/{steps} loss {total / max(1, seen):.3f} "
                      f"({time.time() - start:.0f} s)", flush=True)
        if rank == 0:
            print(f"epoch {epoch + 1}: mean loss {total / max(1, seen):.3f}, {time.time() - start:.0f} s", flush=True)
    if rank == 0:
        tree_tensors = dict(tree.tensors)
        for level, p in enumerate(model.nodes):
            tree_tensors[f"tree.level.{level}.embeddings"] = p.detach()
        served = at.ServedModel(d, scorer, None)
        at.save_model(served, args.out, tree=tree_tensors, tree_spec=tree.spec, spec_path=args.out.replace(".safetensors", "") + ".spec.json")
        print(f"wrote {args.out} after {time.time() - start:.0f} s of training", flush=True)
    dist.barrier()
    dist.destroy_process_group()


def query(arbor, index, history, k, beam):
    out = subprocess.run([arbor, "query", "--index", index, "--history", ",".join(map(str, history)), "--k", str(k),
                          "--beam", str(beam)], check=True, capture_output=True, text=True).stdout
    return [int(line.split("\t")[1]) for line in out.splitlines()[1:] if line.strip()]


def recall(arbor, index, users, beam):
    r10 = r50 = 0.0
    for history, truth in users:
        got = query(arbor, index, history, 50, beam)
        t = set(truth)
        r10 += len(t & set(got[:10])) / len(t)
        r50 += len(t & set(got[:50])) / len(t)
    return r10 / len(users), r50 / len(users)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", required=True, help="folder written by `arbor split`")
    p.add_argument("--tree", required=True, help="safetensors written by `arbor export` (with the tree)")
    p.add_argument("--out", required=True, help="the model file to write")
    p.add_argument("--index", help="import the model into this index (needs --arbor)")
    p.add_argument("--arbor", help="the arbor executable")
    p.add_argument("--compare", help="another index to evaluate the same way (e.g. the one `arbor tdm` trained)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples-per-epoch", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--negatives", type=int, default=60)
    p.add_argument("--history", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sparse-lr", type=float, default=1e-2)
    p.add_argument("--beam", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=29511)
    args = p.parse_args()
    if not 1 <= args.processes <= 64 or args.epochs < 1 or args.batch < args.processes:
        raise SystemExit("--processes must be in 1 ... 64, --epochs >= 1, --batch >= --processes")
    mp.spawn(worker, args=(args, args.port), nprocs=args.processes, join=True)
    if args.index:
        if not args.arbor:
            raise SystemExit("--index needs --arbor")
        subprocess.run([args.arbor, "import", "--weights", args.out, "--index", args.index], check=True)
        _, _, _, test = read_split(args.split)
        r10, r50 = recall(args.arbor, args.index, test, args.beam)
        print(f"PyTorch DDP attention-DNN served by Arbor ({args.index}): {len(test)} test users, beam {args.beam}: "
              f"recall@10 {r10:.4f}, recall@50 {r50:.4f}")
        if args.compare:
            c10, c50 = recall(args.arbor, args.compare, test, args.beam)
            print(f"compared index ({args.compare}): recall@10 {c10:.4f}, recall@50 {c50:.4f}")


if __name__ == "__main__":
    main()
