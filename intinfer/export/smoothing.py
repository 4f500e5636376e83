"""Per-channel smoothing of layer-norm outputs into the linear layers that read them (after
Xiao et al. 2023, SmoothQuant): channel j of the norm's output is divided by s_j (its gamma and
beta are) and column j of each reading linear's weights multiplied by s_j, exactly in float.
s_j = sqrt(max|x_j| / max|W[:, j]|) evens out the channels' ranges between the 8-bit
activation (one scale for all channels) and the per-channel weights, so a few large channels
stop taking the activation's whole range. A norm that also feeds something else (a residual
add) keeps its output for it, and the linears get a smoothed copy (one more LAYER_NORM)."""

from __future__ import annotations

import dataclasses

import torch

from .graph import FloatGraph, Node


def smooth_layer_norms(graph: FloatGraph, batches: list, alpha: float = 0.5) -> int:
    """Rewrites `graph` in place; returns how many norms were smoothed. `batches` are calibration
    inputs, for the per-channel ranges of the norms' outputs."""
    targets = {}
    for node in graph.nodes:
        if node.op != "layer_norm":
            continue
        readers = [u for u in graph.users(node) if u is not None and u.op == "linear" and u.inputs[0] is node]
        if readers:
            targets[node] = readers
    if not targets:
        return 0
    amax = {n: None for n in targets}
    for xs in batches:
        for n, v in graph.stream(*xs):
            if n in targets:
                m = v.abs().reshape(-1, v.shape[-1]).amax(0)
                amax[n] = m if amax[n] is None else torch.maximum(amax[n], m)
    for norm, readers in targets.items():
        w_max = torch.stack([r.attrs["weight"].abs().amax(0) for r in readers]).amax(0)
        s = (amax[norm].clamp(min=1e-5) ** alpha / w_max.clamp(min=1e-5) ** (1 - alpha)).clamp(1e-2, 1e2)
        source = norm
        if any(u is None or u not in readers for u in graph.users(norm)):
            source = dataclasses.replace(norm, name=f"{norm.name}_smoothed", inputs=list(norm.inputs),
                                         attrs=dict(norm.attrs))
            graph.nodes.insert(graph.nodes.index(norm) + 1, source)
        source.attrs["weight"] = norm.attrs["weight"] / s
        source.attrs["bias"] = norm.attrs["bias"] / s
        for r in readers:
            r.attrs["weight"] = r.attrs["weight"] * s
            r.inputs = [source] + r.inputs[1:]
    return len(targets)
