"""Values a model computes from its integer inputs (token ids, attention masks) and constants
alone: the attention-mask bias, the mask of a mean pool, position ids. Libraries build them in
many ways (Hugging Face transformers' masking utilities index a boolean mask with aranges;
RoBERTa counts the non-padding tokens), so they are recognised by what they compute, not by the
ops that compute them: the exporter evaluates the value's subgraph on probe inputs and compares
the result with each meaning the engine has an op for.

Probes have the example inputs' shapes. Mask probes fill each integer input with its own random
right-padded 0/1 mask (at least one 1 per row; one probe all ones); position probes fill them
with a value that none of the subgraph's comparisons names (a token that is not padding). A
relative-position bias is also evaluated at the longest sequence the export allows, so that the
engine gets its value for every distance it can meet."""

from __future__ import annotations

import torch


class Derived:
    """Evaluates fx nodes of an exported program on probe values of its integer inputs."""

    def __init__(self, consts: dict, int_inputs: list, range_constraints: dict | None = None):
        self.consts = consts  # placeholder name -> tensor (parameters, buffers, constants)
        self.int_inputs = int_inputs  # [(fx placeholder, graph Node, concrete example shape)]
        self.range_constraints = range_constraints or {}  # torch.export's symbol -> value range
        # Float inputs at the example's shape: a value computed from the integer inputs may read
        # a float input's size (ViT expands its [CLS] token to the images' batch), never its values.
        self.float_inputs: dict = {}
        self._probes: dict = {}

    def _feeds(self, kind: str, literals: frozenset) -> list[dict]:
        key = (kind, literals)
        if key not in self._probes:
            gen = torch.Generator().manual_seed(0)
            probes = []
            if kind == "mask":
                for seed in range(4):
                    feeds = {}
                    for fx, _, shape in self.int_inputs:
                        feeds[fx.name] = _mask_probe(shape, fx.meta["val"].dtype, gen, ones=seed == 0)
                    probes.append(feeds)
            else:
                token = max([int(v) for v in literals if float(v).is_integer() and abs(v) < 2**31] + [0]) + 1
                probes.append({fx.name: torch.full(shape, token, dtype=fx.meta["val"].dtype)
                               for fx, _, shape in self.int_inputs})
            self._probes[key] = probes
        return self._probes[key]

    def evaluate(self, fx_node, feeds: dict) -> torch.Tensor:
        memo: dict = {}

        def ev(n):
            if not isinstance(n, torch.fx.Node):
                if isinstance(n, (list, tuple)):
                    return type(n)(ev(a) for a in n)
                return n
            if n.name not in memo:
                if n.op == "placeholder":
                    memo[n.name] = feeds.get(n.name, self.float_inputs.get(n.name, self.consts.get(n.name)))
                else:
                    memo[n.name] = n.target(*ev(list(n.args)), **{k: ev(v) for k, v in n.kwargs.items()})
            return memo[n.name]

        with torch.no_grad():
            return ev(fx_node)

    def _values(self, fx_node, kind: str) -> list[tuple[dict, torch.Tensor]]:
        literals = frozenset(_literals(fx_node)) if kind == "positions" else frozenset()
        return [(feeds, self.evaluate(fx_node, feeds)) for feeds in self._feeds(kind, literals)]

    def key_mask(self, fx_node):
        """The integer input m when the value is the attention mask of keys m[b, k] for scores
        [B, heads, Q, K]: boolean (True keeps), or an additive bias (0 keeps, <= -1e4 drops)."""
        values = self._values(fx_node, "mask")
        for fx, node, _ in self.int_inputs:
            if all(_is_key_mask(v, feeds[fx.name]) for feeds, v in values):
                return node
        return None

    def token_mask(self, fx_node, padding: bool = False):
        """The integer input m when the value is m[b, s] as 0/1 (with `padding`, its complement:
        1 at the padding), shaped [B, S] or broadcast along trailing dimensions ([B, S, 1],
        [B, S, H])."""
        values = self._values(fx_node, "mask")
        for fx, node, _ in self.int_inputs:
            if all(_broadcasts(v, (feeds[fx.name] == 0).to(feeds[fx.name].dtype) if padding else feeds[fx.name])
                   for feeds, v in values):
                return node
        return None

    def token_count(self, fx_node):
        """The integer input m when the value is the count of m's ones per row ([B], or broadcast
        along trailing dimensions: [B, 1], [B, H])."""
        values = self._values(fx_node, "mask")
        for fx, node, _ in self.int_inputs:
            if all(_broadcasts(v, feeds[fx.name].sum(1)) for feeds, v in values):
                return node
        return None

    def positions(self, fx_node) -> int | None:
        """k when the value is the position ids k + arange(S) (broadcast over the batch) for every
        token that is not padding, else None."""
        (_, v), = self._values(fx_node, "positions")
        if v.dim() == 0 or v.dtype.is_floating_point or v.numel() == 0:
            return None
        k = int(v.reshape(-1)[0])
        s = v.shape[-1]
        return k if torch.equal(v, torch.broadcast_to(torch.arange(k, k + s, dtype=v.dtype), v.shape)) else None

    def counted_positions(self, fx_node):
        """(the integer input t, k, p) when the value is k + the running count along the last axis
        of t's entries other than p, and k where t is p (RoBERTa's and MPNet's position ids from
        the token ids, left or right padded alike), for some literal p of the subgraph; else None.
        Probed with random mixes of p and another token in every position."""
        literals = sorted({int(v) for v in _literals(fx_node) if float(v).is_integer() and 0 <= v < 2**31})
        token = max(literals + [0]) + 1
        gen = torch.Generator().manual_seed(0)
        for fx, node, shape in self.int_inputs:
            for p in literals:
                found = set()
                for _ in range(3):
                    feeds = {f.name: torch.full(s, token, dtype=f.meta["val"].dtype) for f, _, s in self.int_inputs}
                    pad = torch.rand(shape, generator=gen) < 0.4
                    feeds[fx.name] = torch.where(pad, p, token).to(fx.meta["val"].dtype)
                    try:
                        v = self.evaluate(fx_node, feeds)
                    except (RuntimeError, IndexError, ValueError):
                        break
                    if v.shape != pad.shape or v.dtype.is_floating_point:
                        break
                    real = (~pad).long()
                    found.update(torch.unique(v.long() - torch.cumsum(real, dim=-1) * real).tolist())
                    if len(found) > 1:
                        break
                else:
                    if len(found) == 1:
                        return node, found.pop(), p
        return None

    def longest(self, size) -> int | None:
        """The largest value a dimension of the export may take: a fixed size, or the upper bound
        of its symbol (None when unbounded)."""
        if isinstance(size, int):
            return size
        upper = self.range_constraints.get(size.node.expr)
        upper = getattr(upper, "upper", None)
        try:
            return int(upper)
        except (TypeError, ValueError, OverflowError, AttributeError):  # unbounded: sympy infinities
            return None

    def relative_bias(self, fx_node, reach: int) -> torch.Tensor | None:
        """The float table T [H, 2 reach - 1] when the value, a bias of attention scores [B, H, Q,
        K], is T[h, j - i + reach - 1] at every query i and key j of a sequence up to `reach` long
        (MPNet's and T5's relative position biases: a function of the sizes alone), else None."""
        key = fx_node.meta["val"].shape[-1]
        feeds = {}
        for fx, _, shape in self.int_inputs:
            sizes = fx.meta["val"].shape
            long = [1 if i == 0 and not isinstance(d, int) else reach if str(d) == str(key) else shape[i]
                    for i, d in enumerate(sizes)]
            feeds[fx.name] = torch.ones(long, dtype=fx.meta["val"].dtype)
        table = _by_distance(self.evaluate(fx_node, feeds))
        if table is None or table.shape[1] != 2 * reach - 1:
            return None
        for _, v in self._values(fx_node, "mask"):
            window = _by_distance(v)
            if window is None:
                return None
            half = (window.shape[1] - 1) // 2
            if not torch.equal(window, table[:, reach - 1 - half: reach + half]):
                return None
        return table.float()

    def constant(self, fx_node) -> torch.Tensor | None:
        """The value when it is the same for every probe (it reads no input's values)."""
        values = [v for _, v in self._values(fx_node, "mask") + self._values(fx_node, "positions")]
        return values[0] if all(v.shape == values[0].shape and torch.equal(v, values[0]) for v in values) else None


def _mask_probe(shape: list, dtype, gen, ones: bool) -> torch.Tensor:
    if ones or len(shape) != 2:
        return torch.ones(shape, dtype=dtype) if ones else torch.randint(0, 2, shape, generator=gen).to(dtype)
    lengths = torch.randint(1, shape[1] + 1, (shape[0],), generator=gen)
    return (torch.arange(shape[1])[None, :] < lengths[:, None]).to(dtype)


def _literals(fx_node) -> set:
    """The numbers the value's subgraph compares or combines its inputs with."""
    seen, out, todo = set(), set(), [fx_node]
    while todo:
        n = todo.pop()
        if n.name in seen:
            continue
        seen.add(n.name)
        for a in list(n.args) + list(n.kwargs.values()):
            for x in (a if isinstance(a, (list, tuple)) else [a]):
                if isinstance(x, torch.fx.Node):
                    todo.append(x)
                elif isinstance(x, (int, float)) and not isinstance(x, bool):
                    out.add(x)
    return out


def _broadcasts(v: torch.Tensor, m: torch.Tensor) -> bool:
    """v is m broadcast along trailing dimensions (same values, any dtype)."""
    if v.dim() < m.dim() or tuple(v.shape[: m.dim()]) != tuple(m.shape):
        return False
    want = torch.broadcast_to(m.reshape(list(m.shape) + [1] * (v.dim() - m.dim())), v.shape)
    return bool((v.double() == want.double()).all())


def _is_key_mask(v: torch.Tensor, m: torch.Tensor) -> bool:
    if v.dim() < 2 or v.shape[0] != m.shape[0] or v.shape[-1] != m.shape[-1]:
        return False
    keep = torch.broadcast_to(m.reshape([m.shape[0]] + [1] * (v.dim() - 2) + [m.shape[-1]]) != 0, v.shape)
    if v.dtype == torch.bool:
        return torch.equal(v, keep)
    if not v.dtype.is_floating_point:
        return False
    return bool((v[keep] == 0).all()) and bool((v[~keep] <= -1e4).all())


def _by_distance(v: torch.Tensor) -> torch.Tensor | None:
    """T [H, 2S - 1] when v [B, H, S, S] (float) is T[h, j - i + S - 1] for every batch element,
    else None."""
    if v.dim() != 4 or not v.dtype.is_floating_point or v.shape[2] != v.shape[3] or \
            not bool((v == v[:1]).all()):
        return None
    s = v.shape[2]
    index = (torch.arange(s)[None, :] - torch.arange(s)[:, None] + s - 1).expand(v.shape[1], s, s)
    table = torch.zeros(v.shape[1], 2 * s - 1, dtype=v.dtype)
    table.scatter_(1, index.reshape(v.shape[1], -1), v[0].reshape(v.shape[1], -1))
    return table if torch.equal(torch.gather(table, 1, index.reshape(v.shape[1], -1)).reshape(v[0].shape), v[0]) \
        else None
