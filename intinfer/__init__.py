"""intinfer: integer-only inference of quantized neural networks.

    m = intinfer.load("model.iif", num_threads=2)
    y = m.run(x)
"""

from ._core import ModelError, available_paths, max_num_threads
from .model import Model, TensorInfo, load


def quantize(model, example_inputs, calibration, observer: str = "minmax", **options):
    """Post-training quantization of a torch model to a .iif graph; see intinfer.export.quantize.
    (Imported lazily: torch is needed only to export, not to run.)"""
    from .export import quantize as _quantize

    return _quantize(model, example_inputs, calibration, observer=observer, **options)


__all__ = ["Model", "ModelError", "TensorInfo", "available_paths", "load", "max_num_threads", "quantize"]
__version__ = "0.1.0"
