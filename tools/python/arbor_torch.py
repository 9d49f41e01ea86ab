"""PyTorch twins of the models an Arbor index serves, with save and load through safetensors.

Each class below computes what its Swift counterpart in ArborInference computes, with the same
weight names (a module's ``state_dict()`` keys are the names the index stores, see
docs/MODEL-FILES.md), the same layer order, activations, masking and pooling:

    DNNScorer          dnn.<i>.weight [in, out], .bias [out], .prelu [out]      MLP over [u, n, u*n]
    AttentionScorer    attention.<i>.*, output.<i>.*, behaviour.embeddings,      DIN activation unit,
                       behaviour.ids, encoder.maxHistory, attention.positions    softmax pooling, MLP
    MeanPooling        behaviour.embeddings, behaviour.ids, encoder.maxHistory   mean of the last behaviours
    TwoTowerEncoder    two-tower.behaviour, two-tower.mlp.<i>.*, two-tower.options, two-tower.fallback,
                       two-tower.item-ids
    MINDEncoder        mind.behaviour, mind.bilinear, mind.routing, mind.mlp.<i>.*, mind.options,
                       mind.fallback, mind.item-ids
    SDMEncoder         sdm.* (LSTM, multi-head self-attention, user attention, long-term attention, gate)

Weights are stored ``[inputs, outputs]`` (``y = x @ W + b``), as in Arbor, not as ``nn.Linear``.
``save_model`` writes a module (and optionally a tree) as a safetensors file whose metadata holds
the JSON spec ``arbor import`` checks; ``load_model`` reads one written by ``arbor export``.
"""
from __future__ import annotations

import json
import math
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from safetensors.torch import load_file, save_file
from safetensors import safe_open

SPEC_KEY = "arbor.spec"
SPEC_FORMAT = "arbor-model-1"


# ----------------------------------------------------------------------------------------------
# Named parameters: a dotted name ("sdm.lstm.0.wx") becomes nested modules, so that state_dict()
# keys are exactly Arbor's tensor names.

class Named(nn.Module):
    """A module whose parameters and buffers are created under dotted names."""

    def put(self, name: str, value: torch.Tensor, trainable: bool = True) -> None:
        *path, leaf = name.split(".")
        module: nn.Module = self
        for part in path:
            child = module._modules.get(part)
            if child is None:
                child = nn.Module()
                module.add_module(part, child)
            module = child
        if trainable and value.is_floating_point():
            module.register_parameter(leaf, nn.Parameter(value.clone()))
        else:
            module.register_buffer(leaf, value.clone())

    def t(self, name: str) -> torch.Tensor:
        *path, leaf = name.split(".")
        module: nn.Module = self
        for part in path:
            module = module._modules[part]
        if leaf in module._parameters:
            return module._parameters[leaf]
        return module._buffers[leaf]

    def has(self, name: str) -> bool:
        try:
            self.t(name)
            return True
        except KeyError:
            return False


def mlp_forward(m: Named, prefix: str, x: torch.Tensor, activations: Sequence[str], first: int = 0) -> torch.Tensor:
    """Arbor's InferenceMLP: y = act(x @ W + b) layer by layer (layers first, first + 1, ...)."""
    for i, act in enumerate(activations, start=first):
        x = x @ m.t(f"{prefix}.{i}.weight") + m.t(f"{prefix}.{i}.bias")
        if act == "relu":
            x = torch.relu(x)
        elif act == "prelu":
            slopes = m.t(f"{prefix}.{i}.prelu")
            x = torch.where(x < 0, x * slopes, x)
        elif act != "identity":
            raise ValueError(f"unknown activation {act}")
    return x


def mlp_init(m: Named, prefix: str, widths: Sequence[int], activations: Sequence[str], gen: torch.Generator,
             scale: Optional[float] = None, dtype=torch.float32) -> None:
    """He-uniform weights, zero biases, PReLU slopes 0.25 (Arbor's InferenceMLP.random)."""
    for i, act in enumerate(activations):
        a, b = widths[i], widths[i + 1]
        limit = math.sqrt(6 / a) if scale is None else scale
        m.put(f"{prefix}.{i}.weight", (torch.rand(a, b, generator=gen, dtype=dtype) * 2 - 1) * limit)
        bias = torch.zeros(b, dtype=dtype) if scale is None else (torch.rand(b, generator=gen, dtype=dtype) * 2 - 1) * scale
        m.put(f"{prefix}.{i}.bias", bias)
        if act == "prelu":
            slopes = torch.full((b,), 0.25, dtype=dtype) if scale is None else torch.rand(b, generator=gen, dtype=dtype) * 0.5
            m.put(f"{prefix}.{i}.prelu", slopes)


def default_activations(layers: int, hidden: str = "prelu") -> List[str]:
    return [hidden] * (layers - 1) + ["identity"]


class ItemTable:
    """Item id -> row of a behaviour table (ids as int64 bit patterns of Arbor's UInt64 ids)."""

    def __init__(self, ids: torch.Tensor):
        self.row = {int(v): i for i, v in enumerate(ids.tolist())}

    def rows(self, history: Sequence[int]) -> List[Optional[int]]:
        return [self.row.get(int(h)) for h in history]


# ----------------------------------------------------------------------------------------------
# Node scorers

class DNNScorer(Named):
    """TDM's DNN: an MLP over [u, n, u * n] ending in one unit (Arbor's DNNScorer)."""

    kind = "dnn"

    def __init__(self, dimension: int, widths: Sequence[int], activations: Sequence[str]):
        super().__init__()
        self.d, self.widths, self.activations = dimension, list(widths), list(activations)

    @staticmethod
    def create(dimension: int, hidden: Sequence[int] = (128, 64, 24), seed: int = 0, scale=None) -> "DNNScorer":
        widths = [3 * dimension, *hidden, 1]
        m = DNNScorer(dimension, widths, default_activations(len(widths) - 1))
        mlp_init(m, "dnn", widths, m.activations, torch.Generator().manual_seed(seed), scale)
        return m

    def forward(self, user: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """user [B, d], nodes [B, m, d] (or [m, d], shared) -> scores [B, m]."""
        if nodes.dim() == 2:
            nodes = nodes.unsqueeze(0).expand(user.shape[0], -1, -1)
        u = user.unsqueeze(1).expand_as(nodes)
        x = torch.cat([u, nodes, u * nodes], dim=-1)
        return mlp_forward(self, "dnn", x, self.activations).squeeze(-1)

    def spec_mlps(self) -> Dict[str, dict]:
        return {"dnn": {"widths": self.widths, "activations": self.activations}}


class AttentionScorer(Named):
    """TDM's attention-DNN (Arbor's AttentionScorer): a DIN activation unit
    a_j(n) = act1([e_j, n, e_j * n] @ W1 + b1) @ W2 + b2 over the last maxHistory behaviours (unknown
    ids skipped but counted in the window), softmax over the kept ones, p = sum_j w_j e_j (0 for no
    behaviour), score = output MLP([p, n, p * n]). With positions, row r is added to the r-th most
    recent kept behaviour."""

    kind = "attention"

    def __init__(self, dimension: int, ids: torch.Tensor, max_history: int, attention: Sequence[int],
                 attention_activations: Sequence[str], output: Sequence[int], output_activations: Sequence[str]):
        super().__init__()
        self.d, self.max_history = dimension, max_history
        self.attention_widths, self.attention_activations = list(attention), list(attention_activations)
        self.output_widths, self.output_activations = list(output), list(output_activations)
        self.items = ItemTable(ids)
        self.put("behaviour.ids", ids.to(torch.int64), trainable=False)
        self.put("encoder.maxHistory", torch.tensor([float(max_history)]), trainable=False)

    @staticmethod
    def create(dimension: int, ids: Sequence[int], max_history: int = 50, attention_hidden: int = 36,
               hidden: Sequence[int] = (128, 64, 24), positions: bool = True, seed: int = 0, scale=None,
               embedding_scale: float = 0.1) -> "AttentionScorer":
        gen = torch.Generator().manual_seed(seed)
        aw, ow = [3 * dimension, attention_hidden, 1], [3 * dimension, *hidden, 1]
        m = AttentionScorer(dimension, torch.tensor(list(ids), dtype=torch.int64), max_history, aw,
                            default_activations(2), ow, default_activations(len(ow) - 1))
        mlp_init(m, "attention", aw, m.attention_activations, gen, scale)
        mlp_init(m, "output", ow, m.output_activations, gen, scale)
        m.put("behaviour.embeddings", (torch.rand(len(ids), dimension, generator=gen) * 2 - 1) * embedding_scale)
        if positions:
            m.put("attention.positions", (torch.rand(max_history, dimension, generator=gen) * 2 - 1) * embedding_scale)
        return m

    def history_rows(self, history: Sequence[int]) -> List[int]:
        """Rows of the kept behaviours, oldest first: the window is the last maxHistory ids."""
        return [r for r in self.items.rows(list(history)[-self.max_history:]) if r is not None]

    def pad(self, rows_list: Sequence[Sequence[int]]) -> torch.Tensor:
        """Right-aligned rows [B, L] (-1 = padding), so that column j has recency rank L - 1 - j."""
        length = max(1, max((len(r) for r in rows_list), default=1))
        out = torch.full((len(rows_list), length), -1, dtype=torch.int64)
        for b, rows in enumerate(rows_list):
            if rows:
                out[b, length - len(rows):] = torch.tensor(rows, dtype=torch.int64)
        return out

    def forward(self, rows: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """rows [B, L] right-aligned behaviour rows (-1 padding), nodes [B, m, d] or [m, d] -> [B, m]."""
        table = self.t("behaviour.embeddings")
        batch, length = rows.shape
        if nodes.dim() == 2:
            nodes = nodes.unsqueeze(0).expand(batch, -1, -1)
        mask = rows >= 0                                                     # [B, L]
        e = table[rows.clamp(min=0)]                                        # [B, L, d]
        if self.has("attention.positions"):
            ranks = torch.arange(length - 1, -1, -1)
            e = e + self.t("attention.positions")[ranks].unsqueeze(0)
        e = e * mask.unsqueeze(-1).to(e.dtype)
        d = self.d
        # The unit's first layer on [e, n, e * n], split by blocks of W1 (as Arbor's session does):
        # e @ W1e + n @ W1n + (e * n) @ W1p + b1, without materialising the concatenation.
        w1, b1 = self.t("attention.0.weight"), self.t("attention.0.bias")
        history_term = e @ w1[:d]                                           # [B, L, h]
        node_term = nodes @ w1[d:2 * d]                                     # [B, m, h]
        pair_term = (e.unsqueeze(1) * nodes.unsqueeze(2)) @ w1[2 * d:]     # [B, m, L, h]
        hidden = pair_term + node_term.unsqueeze(2) + history_term.unsqueeze(1) + b1
        act = self.attention_activations
        if act[0] == "relu":
            hidden = torch.relu(hidden)
        elif act[0] == "prelu":
            hidden = torch.where(hidden < 0, hidden * self.t("attention.0.prelu"), hidden)
        unit = mlp_forward(self, "attention", hidden, act[1:], first=1)
        logits = unit.squeeze(-1).masked_fill(~mask.unsqueeze(1), float("-inf"))   # [B, m, L]
        weights = torch.softmax(logits, dim=-1)
        weights = torch.nan_to_num(weights, nan=0.0)                       # a user with no behaviour: p = 0
        pooled = weights @ e                                                # [B, m, d]
        x = torch.cat([pooled, nodes, pooled * nodes], dim=-1)
        return mlp_forward(self, "output", x, self.output_activations).squeeze(-1)

    def score(self, history: Sequence[int], nodes: torch.Tensor) -> torch.Tensor:
        return self.forward(self.pad([self.history_rows(history)]), nodes)[0]

    def spec_mlps(self) -> Dict[str, dict]:
        return {"attention": {"widths": self.attention_widths, "activations": self.attention_activations},
                "output": {"widths": self.output_widths, "activations": self.output_activations}}


# ----------------------------------------------------------------------------------------------
# Query producers

class MeanPooling(Named):
    """TDM's behaviour mean pooling (Arbor's MeanPoolingEncoder): the mean of the known items among
    the last maxHistory ids; the mean of all rows when none is known."""

    kind = "mean-pooling"

    def __init__(self, ids: torch.Tensor, embeddings: torch.Tensor, max_history: int):
        super().__init__()
        self.items, self.max_history = ItemTable(ids), max_history
        self.put("behaviour.embeddings", embeddings)
        self.put("behaviour.ids", ids.to(torch.int64), trainable=False)
        self.put("encoder.maxHistory", torch.tensor([float(max_history)]), trainable=False)

    def encode(self, history: Sequence[int], timestamps=None) -> torch.Tensor:
        table = self.t("behaviour.embeddings")
        rows = [r for r in self.items.rows(list(history)[-self.max_history:]) if r is not None]
        if not rows:
            return table.mean(dim=0, keepdim=True)
        return table[rows].mean(dim=0, keepdim=True)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1e-12)


class TwoTowerEncoder(Named):
    """YouTube-DNN user tower (Arbor's TwoTowerEncoder): walking the history from the newest, unknown
    ids are skipped (they do not use up the window) and the first maxHistory known ones are averaged;
    MLP with ReLU between layers, linear last; unit-normalised when cosine; fallback when none."""

    kind = "two-tower"

    def __init__(self, ids: torch.Tensor, dimension: int, widths: Sequence[int], max_history: int, cosine: bool,
                 temperature: float = 0.05):
        super().__init__()
        self.items, self.d, self.widths = ItemTable(ids), dimension, list(widths)
        self.activations = default_activations(len(widths) - 1, hidden="relu")
        self.max_history, self.cosine = max_history, cosine
        self.put("two-tower.item-ids", ids.to(torch.int64), trainable=False)
        self.put("two-tower.options", torch.tensor([float(max_history), 1.0 if cosine else 0.0, temperature]), trainable=False)

    @staticmethod
    def create(ids: Sequence[int], dimension: int, hidden: Sequence[int] = (64,), max_history: int = 50, cosine: bool = True,
               seed: int = 0, scale: float = 0.5) -> "TwoTowerEncoder":
        gen = torch.Generator().manual_seed(seed)
        widths = [dimension, *hidden, dimension]
        m = TwoTowerEncoder(torch.tensor(list(ids), dtype=torch.int64), dimension, widths, max_history, cosine)
        m.put("two-tower.behaviour", (torch.rand(len(ids), dimension, generator=gen) * 2 - 1) * scale)
        mlp_init(m, "two-tower.mlp", widths, m.activations, gen, scale)
        m.put("two-tower.fallback", (torch.rand(dimension, generator=gen) * 2 - 1) * scale, trainable=False)
        return m

    def encode(self, history: Sequence[int], timestamps=None) -> torch.Tensor:
        rows = [r for r in self.items.rows(list(reversed(list(history)))) if r is not None][: self.max_history]
        if not rows:
            return self.t("two-tower.fallback").unsqueeze(0)
        pooled = self.t("two-tower.behaviour")[rows].mean(dim=0, keepdim=True)
        v = mlp_forward(self, "two-tower.mlp", pooled, self.activations)
        return _normalize(v) if self.cosine else v

    def spec_mlps(self) -> Dict[str, dict]:
        return {"two-tower.mlp": {"widths": self.widths, "activations": self.activations}}


def active_interests(length: int, max_interests: int) -> int:
    """K' = max(1, min(K, floor(log2 L))) (1 for L < 2 or K = 1)."""
    if length < 2 or max_interests <= 1:
        return 1
    return max(1, min(max_interests, length.bit_length() - 1))


class MINDEncoder(Named):
    """MIND's multi-interest extractor (Arbor's MINDEncoder): the last maxHistory known behaviours,
    u_hat = E S, dynamic routing from the stored logits for K' active interests, squash
    (|z| = sqrt(|z|^2 + 1e-9)), the MLP on each capsule, unit-normalised when cosine."""

    kind = "mind"

    def __init__(self, ids: torch.Tensor, dimension: int, widths: Sequence[int], activations: Sequence[str],
                 max_history: int, interests: int, iterations: int, cosine: bool, power: float = 1.0):
        super().__init__()
        self.items, self.d, self.widths, self.activations = ItemTable(ids), dimension, list(widths), list(activations)
        self.max_history, self.interests, self.iterations, self.cosine = max_history, interests, iterations, cosine
        self.put("mind.item-ids", ids.to(torch.int64), trainable=False)
        self.put("mind.options", torch.tensor([float(max_history), float(interests), float(iterations),
                                               1.0 if cosine else 0.0, power]), trainable=False)

    @staticmethod
    def create(ids: Sequence[int], dimension: int, hidden: Sequence[int] = (64,), max_history: int = 50, interests: int = 4,
               iterations: int = 3, cosine: bool = True, seed: int = 0, scale: float = 0.5) -> "MINDEncoder":
        gen = torch.Generator().manual_seed(seed)
        widths = [dimension, *hidden, dimension]
        m = MINDEncoder(torch.tensor(list(ids), dtype=torch.int64), dimension, widths,
                        default_activations(len(widths) - 1, hidden="relu"), max_history, interests, iterations, cosine)
        m.put("mind.behaviour", (torch.rand(len(ids), dimension, generator=gen) * 2 - 1) * scale)
        m.put("mind.bilinear", (torch.rand(dimension, dimension, generator=gen) * 2 - 1) * scale)
        m.put("mind.routing", torch.randn(max_history, interests, generator=gen), trainable=False)
        mlp_init(m, "mind.mlp", widths, m.activations, gen, scale)
        m.put("mind.fallback", (torch.rand(dimension, generator=gen) * 2 - 1) * scale, trainable=False)
        return m

    def encode(self, history: Sequence[int], timestamps=None) -> torch.Tensor:
        rows = [r for r in self.items.rows(list(reversed(list(history)))) if r is not None][: self.max_history]
        rows.reverse()
        if not rows:
            return self.t("mind.fallback").unsqueeze(0)
        length = len(rows)
        k = active_interests(length, self.interests)
        u_hat = self.t("mind.behaviour")[rows] @ self.t("mind.bilinear")          # [L, d]
        logits = self.t("mind.routing")[:length, :k].clone()
        capsules = None
        for r in range(self.iterations):
            w = torch.softmax(logits, dim=1)                                        # [L, k]
            z = w.t() @ u_hat                                                       # [k, d]
            norm = torch.sqrt((z * z).sum(dim=1, keepdim=True) + 1e-9)
            capsules = z * (norm / (1 + norm * norm))
            if r + 1 < self.iterations:
                logits = logits + u_hat @ capsules.t()
        v = mlp_forward(self, "mind.mlp", capsules, self.activations)
        return _normalize(v) if self.cosine else v

    def spec_mlps(self) -> Dict[str, dict]:
        return {"mind.mlp": {"widths": self.widths, "activations": self.activations}}


class SDMEncoder(Named):
    """SDM (Arbor's SDMEncoder): unknown ids dropped, events ordered by time (stable), sessions cut
    at a gap over maxGap seconds or maxActions events; short term = the latest session's last
    maxSession items, long term = the maxLong items before it (none without timestamps).
    u = tanh(mean(E[short + long]) W_u + b_u); short: stacked LSTM (gates i, f, g, o), multi-head
    self-attention, user attention; long: attention over items (and categories), tanh dense; gated
    fusion; unit-normalised when cosine."""

    kind = "sdm"
    FUSIONS = {0: "gated", 1: "short-only", 2: "long-only"}

    def __init__(self, ids: torch.Tensor, dimension: int, heads: int, max_session: int, max_long: int, max_gap: float,
                 max_actions: int, lstm_layers: int, fusion: int, cosine: bool, categories: int, temperature: float = 0.05):
        super().__init__()
        self.items, self.d, self.heads = ItemTable(ids), dimension, heads
        self.max_session, self.max_long, self.max_gap, self.max_actions = max_session, max_long, max_gap, max_actions
        self.lstm_layers, self.fusion, self.cosine, self.categories = lstm_layers, fusion, cosine, categories
        self.put("sdm.item-ids", ids.to(torch.int64), trainable=False)
        self.put("sdm.options", torch.tensor([float(heads), float(max_session), float(max_long), float(max_gap),
                                              float(max_actions), float(lstm_layers), float(fusion),
                                              1.0 if cosine else 0.0, temperature]), trainable=False)

    @staticmethod
    def create(ids: Sequence[int], dimension: int, heads: int = 2, max_session: int = 5, max_long: int = 6,
               max_gap: float = 600, max_actions: int = 50, lstm_layers: int = 2, fusion: int = 0, cosine: bool = True,
               categories: int = 4, seed: int = 0, scale: float = 0.5) -> "SDMEncoder":
        gen = torch.Generator().manual_seed(seed)
        d, n = dimension, len(ids)
        m = SDMEncoder(torch.tensor(list(ids), dtype=torch.int64), d, heads, max_session, max_long, max_gap, max_actions,
                       lstm_layers, fusion, cosine, categories)

        def rnd(*shape):
            return (torch.rand(*shape, generator=gen) * 2 - 1) * scale
        m.put("sdm.item.table", rnd(n, d))
        if categories > 0:
            m.put("sdm.category.table", rnd(categories, d))
            m.put("sdm.item.category", torch.tensor([-1.0 if i % 5 == 4 else float(i % categories) for i in range(n)]),
                  trainable=False)
        for layer in range(lstm_layers):
            m.put(f"sdm.lstm.{layer}.wx", rnd(d, 4 * d))
            m.put(f"sdm.lstm.{layer}.wh", rnd(d, 4 * d))
            m.put(f"sdm.lstm.{layer}.bias", rnd(4 * d))
        for p in "qkvo":
            m.put(f"sdm.attention.{p}.weight", rnd(d, d))
        m.put("sdm.attention.o.bias", rnd(d))
        m.put("sdm.user.weight", rnd(d, d))
        m.put("sdm.user.bias", rnd(d))
        if fusion != 1:
            m.put("sdm.long.weight", rnd((2 if categories > 0 else 1) * d, d))
            m.put("sdm.long.bias", rnd(d))
        if fusion == 0:
            m.put("sdm.gate.weight", rnd(3 * d, d))
            m.put("sdm.gate.bias", rnd(d))
        m.put("sdm.fallback", rnd(d), trainable=False)
        return m

    def split(self, history: Sequence[int], timestamps: Optional[Sequence[float]]):
        order = list(range(len(history)))
        if timestamps is not None:
            order.sort(key=lambda i: (timestamps[i], i))
        rows, times = [], []
        for i in order:
            r = self.items.row.get(int(history[i]))
            if r is None:
                continue
            rows.append(r)
            if timestamps is not None:
                times.append(timestamps[i])
        start = 0
        if timestamps is not None:
            length, last = 0, -math.inf
            for i, t in enumerate(times):
                if length > 0 and (t - last > self.max_gap or length >= self.max_actions):
                    start, length = i, 0
                length += 1
                last = t
        short = rows[max(start, len(rows) - self.max_session):]
        long = rows[max(0, start - self.max_long): start] if self.fusion != 1 else []
        return short, long

    def _lstm(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        d = self.d
        act = x @ self.t(f"sdm.lstm.{layer}.wx") + self.t(f"sdm.lstm.{layer}.bias")
        wh = self.t(f"sdm.lstm.{layer}.wh")
        h = torch.zeros(d, dtype=x.dtype)
        c = torch.zeros(d, dtype=x.dtype)
        out = []
        for step in range(x.shape[0]):
            a = act[step] + h @ wh
            i, f = torch.sigmoid(a[:d]), torch.sigmoid(a[d:2 * d])
            g, o = torch.tanh(a[2 * d:3 * d]), torch.sigmoid(a[3 * d:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out)

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        steps, d, heads = x.shape[0], self.d, self.heads
        w = d // heads
        q = (x @ self.t("sdm.attention.q.weight")).view(steps, heads, w).transpose(0, 1)
        k = (x @ self.t("sdm.attention.k.weight")).view(steps, heads, w).transpose(0, 1)
        v = (x @ self.t("sdm.attention.v.weight")).view(steps, heads, w).transpose(0, 1)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(w), dim=-1)
        joined = (a @ v).transpose(0, 1).reshape(steps, d)
        return joined @ self.t("sdm.attention.o.weight") + self.t("sdm.attention.o.bias")

    @staticmethod
    def _attend(u: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        if keys.shape[0] == 0:
            return torch.zeros_like(u)
        return torch.softmax(keys @ u, dim=0) @ keys

    def encode(self, history: Sequence[int], timestamps: Optional[Sequence[float]] = None) -> torch.Tensor:
        short, long = self.split(history, timestamps)
        if not short:
            return self.t("sdm.fallback").unsqueeze(0)
        table = self.t("sdm.item.table")
        es, el = table[short], table[long]
        u = torch.tanh(torch.cat([es, el]).mean(dim=0) @ self.t("sdm.user.weight") + self.t("sdm.user.bias"))
        x = es
        for layer in range(self.lstm_layers):
            x = self._lstm(x, layer)
        s = self._attend(u, self._self_attention(x))
        o = s
        if self.fusion != 1:
            z = self._attend(u, el)
            if self.categories > 0:
                cats = [int(self.t("sdm.item.category")[r]) for r in long]
                ctable = self.t("sdm.category.table")
                ck = torch.stack([ctable[c] if c >= 0 else torch.zeros(self.d, dtype=ctable.dtype) for c in cats]) \
                    if cats else ctable[:0]
                z = torch.cat([z, self._attend(u, ck)])
            p = torch.tanh(z @ self.t("sdm.long.weight") + self.t("sdm.long.bias"))
            if self.fusion == 2:
                o = p
            elif len(long) > 0:
                g = torch.sigmoid(torch.cat([u, s, p]) @ self.t("sdm.gate.weight") + self.t("sdm.gate.bias"))
                o = (1 - g) * p + g * s
        o = o.unsqueeze(0)
        return _normalize(o) if self.cosine else o

    def spec_extra(self) -> dict:
        return {"sdm": {"lstmLayers": self.lstm_layers, "categories": self.categories,
                        "fusion": self.FUSIONS[self.fusion]}}


# ----------------------------------------------------------------------------------------------
# A served model: scorer + producer, with the spec and save/load.

class ServedModel(nn.Module):
    """What an index serves: a node scorer ("inner-product", DNNScorer or AttentionScorer) and a query
    producer (None for leaf mean pooling and the raw history)."""

    PRODUCERS = {"mean-pooling": MeanPooling, "two-tower": TwoTowerEncoder, "mind": MINDEncoder, "sdm": SDMEncoder}

    def __init__(self, dimension: int, scorer: Optional[nn.Module], producer: Optional[nn.Module]):
        super().__init__()
        self.d = dimension
        self.scorer = scorer
        self.producer = producer

    @property
    def node_scorer(self) -> str:
        return "inner-product" if self.scorer is None else self.scorer.kind

    @property
    def query_producer(self) -> str:
        if isinstance(self.scorer, AttentionScorer):
            return "history"
        return "leaf-mean-pooling" if self.producer is None else self.producer.kind

    def named_tensors(self) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        for part in (self.scorer, self.producer):
            if part is not None:
                out.update({k: v.detach() for k, v in part.state_dict().items()})
        return out

    def spec(self) -> dict:
        spec = {"format": SPEC_FORMAT, "nodeScorer": self.node_scorer, "queryProducer": self.query_producer,
                "dimension": self.d, "mlps": {}}
        for part in (self.scorer, self.producer):
            if part is None:
                continue
            if hasattr(part, "spec_mlps"):
                spec["mlps"].update(part.spec_mlps())
            if hasattr(part, "spec_extra"):
                spec.update(part.spec_extra())
        t = self.named_tensors()
        for name in ("behaviour.embeddings", "two-tower.behaviour", "mind.behaviour", "sdm.item.table"):
            if name in t:
                spec["items"] = int(t[name].shape[0])
        if isinstance(self.scorer, AttentionScorer) or isinstance(self.producer, MeanPooling):
            spec["maxHistory"] = int(t["encoder.maxHistory"][0])
        if "attention.positions" in t:
            spec["positions"] = int(t["attention.positions"].shape[0])
        if isinstance(self.producer, TwoTowerEncoder):
            spec["maxHistory"] = self.producer.max_history
        if isinstance(self.producer, MINDEncoder):
            spec["maxHistory"], spec["interests"] = self.producer.max_history, self.producer.interests
        if isinstance(self.producer, SDMEncoder):
            spec["maxHistory"] = self.producer.max_session
        return spec

    def queries(self, history: Sequence[int], timestamps=None) -> Optional[torch.Tensor]:
        """The query vectors [K, d] of a history (None for the attention scorer, which reads it)."""
        if self.producer is None:
            return None
        return self.producer.encode(history, timestamps)

    def scores(self, history: Sequence[int], nodes: torch.Tensor, timestamps=None) -> torch.Tensor:
        """Scores [K, m] of m candidate nodes for each query of the history."""
        if isinstance(self.scorer, AttentionScorer):
            return self.scorer.score(history, nodes).unsqueeze(0)
        q = self.queries(history, timestamps)
        if self.scorer is None:
            return q @ nodes.t()
        return self.scorer(q, nodes)


def save_model(model: ServedModel, path: str, tree: Optional[Dict[str, torch.Tensor]] = None,
               tree_spec: Optional[dict] = None, spec_path: Optional[str] = None) -> dict:
    """Writes the model's tensors (and a tree: tree.* tensors with its spec entry) as safetensors with
    the spec in the metadata (and at spec_path). Floats are written as F32. Returns the spec."""
    tensors = {k: (v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)).contiguous()
               for k, v in model.named_tensors().items()}
    spec = model.spec()
    if tree is not None:
        tensors.update({k: (v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)).contiguous()
                        for k, v in tree.items()})
        spec["tree"] = tree_spec
    save_file(tensors, path, metadata={SPEC_KEY: json.dumps(spec, sort_keys=True), "format": "pt"})
    if spec_path:
        with open(spec_path, "w") as f:
            json.dump(spec, f, indent=2, sort_keys=True)
    return spec


def read_spec(path: str) -> dict:
    with safe_open(path, framework="pt") as f:
        return json.loads(f.metadata()[SPEC_KEY])


def mlp_spec(spec: dict, prefix: str):
    m = spec["mlps"][prefix]
    return m["widths"], m["activations"]


def load_model(path: str) -> ServedModel:
    """A ServedModel from a file written by `arbor export` (or save_model); tree tensors are ignored."""
    spec = read_spec(path)
    t = load_file(path)
    d = spec["dimension"]
    scorer = None
    if spec["nodeScorer"] == "dnn":
        widths, acts = mlp_spec(spec, "dnn")
        scorer = DNNScorer(d, widths, acts)
        for k, v in t.items():
            if k.startswith("dnn."):
                scorer.put(k, v)
    elif spec["nodeScorer"] == "attention":
        aw, aa = mlp_spec(spec, "attention")
        ow, oa = mlp_spec(spec, "output")
        scorer = AttentionScorer(d, t["behaviour.ids"], spec["maxHistory"], aw, aa, ow, oa)
        for k, v in t.items():
            if k.split(".")[0] in ("attention", "output") or k == "behaviour.embeddings":
                scorer.put(k, v)
    producer = None
    kind = spec["queryProducer"]
    if kind == "mean-pooling":
        producer = MeanPooling(t["behaviour.ids"], t["behaviour.embeddings"], spec["maxHistory"])
    elif kind == "two-tower":
        o = t["two-tower.options"]
        widths, _ = mlp_spec(spec, "two-tower.mlp")
        producer = TwoTowerEncoder(t["two-tower.item-ids"], d, widths, int(o[0]), bool(o[1] != 0), float(o[2]))
        for k, v in t.items():
            if k.startswith("two-tower.") and k not in ("two-tower.item-ids", "two-tower.options"):
                producer.put(k, v, trainable=k != "two-tower.fallback")
    elif kind == "mind":
        o = t["mind.options"]
        widths, acts = mlp_spec(spec, "mind.mlp")
        producer = MINDEncoder(t["mind.item-ids"], d, widths, acts, int(o[0]), int(o[1]), int(o[2]), bool(o[3] != 0), float(o[4]))
        for k, v in t.items():
            if k.startswith("mind.") and k not in ("mind.item-ids", "mind.options"):
                producer.put(k, v, trainable=k not in ("mind.routing", "mind.fallback"))
    elif kind == "sdm":
        o = [float(x) for x in t["sdm.options"]]
        producer = SDMEncoder(t["sdm.item-ids"], d, int(o[0]), int(o[1]), int(o[2]), o[3], int(o[4]), int(o[5]), int(o[6]),
                              o[7] != 0, spec["sdm"]["categories"], o[8])
        for k, v in t.items():
            if k.startswith("sdm.") and k not in ("sdm.item-ids", "sdm.options"):
                producer.put(k, v, trainable=k not in ("sdm.item.category", "sdm.fallback"))
    return ServedModel(d, scorer, producer)


def load_tree(path: str):
    """The tree of a file written by `arbor export` (without --model-only): (spec["tree"], tensors)."""
    spec = read_spec(path)
    t = load_file(path)
    return spec.get("tree"), {k: v for k, v in t.items() if k.startswith("tree.")}
