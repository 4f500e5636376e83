"""intinfer.prune: pruning that makes models smaller and faster in the engine (docs/pruning.md).

Magnitude pruning (unstructured or in 1 x B blocks along the reduction, per layer or global, an
iterative schedule, masks kept through intinfer.qat), attention-head and feed-forward-unit pruning
(Michel et al. 2019) and channel pruning for CNNs, all removing weights physically.
"""

from .magnitude import DEFAULT_BLOCK, DensityReport, LayerDensity, Masks, density, iterative_prune, magnitude_prune
from .structured import (channel_importance, ffn_importance, head_importance, prune_channels,
                         prune_channels_by_importance, prune_channels_by_norm, prune_ffn_by_importance,
                         prune_ffn_units, prune_heads, prune_heads_by_importance)

__all__ = ["DEFAULT_BLOCK", "DensityReport", "LayerDensity", "Masks", "density", "iterative_prune", "magnitude_prune",
           "channel_importance", "ffn_importance", "head_importance", "prune_channels", "prune_channels_by_importance",
           "prune_channels_by_norm", "prune_ffn_by_importance", "prune_ffn_units", "prune_heads",
           "prune_heads_by_importance"]
