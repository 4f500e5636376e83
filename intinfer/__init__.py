"""intinfer: integer-only inference of quantized neural networks.

    m = intinfer.load("model.iif", num_threads=2)
    y = m.run(x)
"""

from ._core import ModelError
from .model import Model, TensorInfo, load

__all__ = ["Model", "ModelError", "TensorInfo", "load"]
__version__ = "0.1.0"
