"""What a model costs: parameters, stored weight bytes and work per layer, against a budget.

`intinfer.load(path).cost(shapes)` counts a `.iif` as the engine will run it;
`intinfer.cost.torch_cost(module, example_inputs)` counts a torch model before export. Both give
a `Cost`: str() is a table, `to_dict()` is JSON-ready, `verdict(...)` checks a budget
(docs/cost.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# Lite Transformer's mobile setting (Wu et al. 2020): at most 10M parameters and 500M mult-adds.
DEFAULT_BUDGET_PARAMS = 10_000_000
DEFAULT_BUDGET_MACS = 500_000_000

# Ops whose multiply-accumulates are the model's mult-adds: products with weights, and MATMUL's
# products of two activations (attention's scores and context).
_PRODUCT_OPS = {"CONV2D", "FULLY_CONNECTED", "MATMUL"}
# Ops that only move or select data: no arithmetic counted.
_MOVE_OPS = {"RESHAPE", "TRANSPOSE", "SLICE", "CONCAT", "GATHER", "APPLY_MASK"}
# Ops whose work the engine counts as window steps (one addition or comparison each).
_POOL_OPS = {"AVG_POOL", "MAX_POOL", "GLOBAL_AVG_POOL"}

_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_count(text) -> int:
    """A count as people write budgets: 10M, 500M, 1.5G, 4k, 2500000 or 2_500_000."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgGtT]?)\s*", str(text).replace("_", ""))
        if m is None:
            raise ValueError(f"cannot read {text!r} as a count: write a number with an optional "
                             "suffix k, M, G or T (e.g. 10M, 500M, 1.5G)")
        value = float(m.group(1)) * _SUFFIXES[m.group(2).upper()]
        if value != int(value):
            raise ValueError(f"{text!r} is not a whole count")
        value = int(value)
    if value <= 0:
        raise ValueError(f"a budget must be positive, got {text!r}")
    return value


@dataclass
class LayerCost:
    name: str
    op: str
    parameters: int
    weight_bytes: int  # stored, at the bits and encoding of the file (torch: 4 bytes each)
    macs: int  # multiply-accumulates of products (convolutions, GEMMs, activation x activation)
    other_ops: int  # elementwise arithmetic: output elements, or window steps for pools


@dataclass
class Cost:
    layers: list
    input_shapes: dict
    arena_bytes: int | None = None  # activation memory of the engine's plan (None for torch)
    source: str = "iif"
    totals: dict = field(init=False)

    def __post_init__(self):
        self.totals = {
            "parameters": sum(r.parameters for r in self.layers),
            "weight_bytes": sum(r.weight_bytes for r in self.layers),
            "macs": sum(r.macs for r in self.layers),
            "activation_macs": sum(r.macs for r in self.layers if r.op == "MATMUL"),
            "other_ops": sum(r.other_ops for r in self.layers),
        }

    def verdict(self, budget_params=DEFAULT_BUDGET_PARAMS, budget_macs=DEFAULT_BUDGET_MACS) -> dict:
        """Whether the parameters and mult-adds fit the budget (counts or strings like "10M")."""
        params, macs = parse_count(budget_params), parse_count(budget_macs)
        return {
            "budget_params": params, "budget_macs": macs,
            "params_ratio": self.totals["parameters"] / params, "macs_ratio": self.totals["macs"] / macs,
            "fits": self.totals["parameters"] <= params and self.totals["macs"] <= macs,
        }

    def to_dict(self, budget_params=DEFAULT_BUDGET_PARAMS, budget_macs=DEFAULT_BUDGET_MACS) -> dict:
        return {"source": self.source, "input_shapes": self.input_shapes, "arena_bytes": self.arena_bytes,
                "totals": self.totals, "verdict": self.verdict(budget_params, budget_macs),
                "layers": [asdict(r) for r in self.layers]}

    def table(self, budget_params=DEFAULT_BUDGET_PARAMS, budget_macs=DEFAULT_BUDGET_MACS) -> str:
        shown = [r for r in self.layers if r.parameters or r.macs or r.other_ops]
        w = max([len(r.name) for r in shown] + [5])
        lines = [f"{'layer':<{w}} {'op':<16} {'params':>12} {'weight bytes':>13} {'MACs':>15} {'other ops':>13}"]
        for r in shown:
            lines.append(f"{r.name:<{w}} {r.op:<16} {r.parameters:>12,} {r.weight_bytes:>13,} {r.macs:>15,} "
                         f"{r.other_ops:>13,}")
        t, v = self.totals, self.verdict(budget_params, budget_macs)
        shapes = ", ".join(f"{k} {list(s)}" for k, s in self.input_shapes.items())
        lines.append(f"total ({shapes}): {t['parameters']:,} parameters, {t['weight_bytes']:,} weight bytes, "
                     f"{t['macs']:,} MACs ({t['activation_macs']:,} activation x activation), "
                     f"{t['other_ops']:,} other ops")
        if self.arena_bytes is not None:
            lines.append(f"activation arena: {self.arena_bytes:,} bytes")
        lines.append(f"budget {v['budget_params']:,} parameters, {v['budget_macs']:,} MACs: "
                     f"{'fits' if v['fits'] else 'over'} (parameters {v['params_ratio']:.1%}, "
                     f"MACs {v['macs_ratio']:.1%} of it)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def model_cost(model, shapes=None) -> Cost:
    """The cost of a loaded intinfer Model for input shapes {name: shape} (dynamic dimensions not
    given are 1)."""
    names = [i.name for i in model.inputs]
    unknown = sorted(set(shapes or {}) - set(names))
    if unknown:
        raise ValueError(f"unknown input(s) {unknown}; the model's inputs are {names}")
    # ints for JSON (a caller's numpy integers are not)
    full = {name: [int(d) for d in shape] for name, shape in model._input_shapes(shapes).items()}
    ops, work = model._core.ops(), model._core.op_costs(list(full.values()))
    layers = []
    for (op, name, _, params, stored), (macs, written) in zip(ops, work):
        if op in _PRODUCT_OPS:
            product, other = macs, 0
        elif op in _POOL_OPS:
            product, other = 0, macs
        else:
            product, other = 0, 0 if op in _MOVE_OPS else written
        layers.append(LayerCost(name, op, params, stored, product, other))
    return Cost(layers, full, model.memory(full)["arena_bytes"])


def torch_cost(module, example_inputs) -> Cost:
    """The cost of a torch model on example inputs, before export: parameters per module (held
    as float32, 4 bytes each) and the mult-adds of its convolutions, GEMMs and batched matmuls as
    torch.utils.flop_counter counts them (a multiply-add is 2 of its FLOPs; elementwise ops are
    not counted: other_ops is 0)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    # Keyed by the root's class name, then ".fqn" for submodules; each module's count includes
    # its children's, so a module's own products (e.g. attention's matmuls written in its
    # forward) are its count less its children's.
    totals = {key: sum(ops.values()) // 2 for key, ops in counter.get_flop_counts().items()}
    root = type(module).__name__

    def key(name):
        return f"{root}.{name}" if name else root

    def below(name, sub):
        """What `sub`'s called descendants count: its children's counts, through the containers
        that are never called themselves (a ModuleList has no count of its own)."""
        total = 0
        for c, child in sub.named_children():
            path = f"{name}.{c}" if name else c
            total += totals[key(path)] if key(path) in totals else below(path, child)
        return total

    layers = []
    for name, sub in module.named_modules():
        params = sum(p.numel() for p in sub.parameters(recurse=False))
        macs = totals[key(name)] - below(name, sub) if key(name) in totals else 0
        if params or macs:
            layers.append(LayerCost(name or root, type(sub).__name__, params, 4 * params, int(macs), 0))
    shapes = {f"input{i}": list(x.shape) for i, x in enumerate(inputs) if hasattr(x, "shape")}
    return Cost(layers, shapes, None, source="torch")
