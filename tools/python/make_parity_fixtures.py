"""Generates the parity fixtures of Tests/Fixtures/torch: for each served kind, a small model made in
PyTorch (arbor_torch.py), saved as <kind>.safetensors (F32 weights, spec in the metadata), and
<kind>.cases.safetensors with candidate nodes, histories (ids, lengths, timestamps) and the scores
PyTorch computes for them in float64 from the same F32 weights. The Swift test
(ArborInterchangeTests/TorchParityTests) imports each model into an index and checks Arbor's scores.

    /work/.venv-torch/bin/python tools/python/make_parity_fixtures.py [--out Tests/Fixtures/torch]

Prints, per kind, the largest relative difference between PyTorch float32 and float64 scores, the
relative difference of a score row being max |a - b| / max |b| (the max-norm relative error).
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arbor_torch as at  # noqa: E402

D = 8
IDS = [1000 + 3 * i for i in range(60)]
HISTORIES = [
    [1000, 1003, 1030, 1090],
    [1150, 1006, 7, 1177, 1021, 1009, 1012, 1060],
    [1015],
    [],
    [1099, 1102, 1105, 1108, 1111, 1114, 1117, 1120, 1123, 1126, 1129],
    [7, 8, 9],
]
TIMES = [
    [0, 10, 20, 5000],
    [0, 5, 9, 2000, 2010, 2015, 9000, 9001],
    [3],
    [],
    [0, 100, 200, 300, 2000, 2100, 2200, 2300, 2400, 2500, 2600],
    [1, 2, 3],
]


def build(kind: str) -> at.ServedModel:
    if kind == "dnn":
        g = torch.Generator().manual_seed(11)
        pooling = at.MeanPooling(torch.tensor(IDS), (torch.rand(len(IDS), D, generator=g) * 2 - 1) * 0.5, max_history=5)
        return at.ServedModel(D, at.DNNScorer.create(D, hidden=(16, 8), seed=12, scale=0.5), pooling)
    if kind == "attention":
        return at.ServedModel(D, at.AttentionScorer.create(D, IDS, max_history=6, attention_hidden=12, hidden=(16,),
                                                           seed=13, scale=0.5, embedding_scale=0.5), None)
    if kind == "two-tower":
        return at.ServedModel(D, None, at.TwoTowerEncoder.create(IDS, D, hidden=(16,), max_history=5, seed=14))
    if kind == "mind":
        return at.ServedModel(D, None, at.MINDEncoder.create(IDS, D, hidden=(16,), max_history=7, interests=3, seed=15))
    if kind == "sdm":
        return at.ServedModel(D, None, at.SDMEncoder.create(IDS, D, heads=2, max_session=5, max_long=6, seed=16))
    raise ValueError(kind)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)
    return float(((a - b).abs().amax(dim=1, keepdim=True) / scale).max())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "torch"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    nodes = (torch.rand(12, D, generator=g) * 2 - 1)
    length = max(len(h) for h in HISTORIES)
    histories = torch.full((len(HISTORIES), length), -1, dtype=torch.int64)
    times = torch.zeros(len(HISTORIES), length)
    for i, (h, t) in enumerate(zip(HISTORIES, TIMES)):
        histories[i, : len(h)] = torch.tensor(h, dtype=torch.int64)
        times[i, : len(t)] = torch.tensor(t, dtype=torch.float32)
    for kind in ["dnn", "attention", "two-tower", "mind", "sdm"]:
        model = build(kind)
        at.save_model(model, os.path.join(args.out, f"{kind}.safetensors"))
        with torch.no_grad():
            single = torch.cat([model.scores(h, nodes, t) for h, t in zip(HISTORIES, TIMES)])
            reference = model.double()
            rows, double = [], []
            for h, t in zip(HISTORIES, TIMES):
                s = reference.scores(h, nodes.double(), [float(x) for x in t])
                rows.append(s.shape[0])
                double.append(s)
            double = torch.cat(double)
        save_file({
            "nodes": nodes.contiguous(),
            "histories": histories,
            "lengths": torch.tensor([len(h) for h in HISTORIES], dtype=torch.int64),
            "timestamps": times,
            "rows": torch.tensor(rows, dtype=torch.int64),
            "expected": double.to(torch.float32).contiguous(),
        }, os.path.join(args.out, f"{kind}.cases.safetensors"))
        print(f"{kind}: {double.shape[0]} score rows x {nodes.shape[0]} nodes; "
              f"torch float32 vs float64 largest relative difference {rel(single.double(), double):.2e}")


if __name__ == "__main__":
    main()
