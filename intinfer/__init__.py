"""intinfer: integer-only inference of quantized neural networks.

    m = intinfer.load("model.iif", num_threads=2)
    y = m.run(x)
"""

try:
    from ._core import ModelError, available_paths, max_num_threads
except ModuleNotFoundError as e:
    if e.name != __name__ + "._core":
        raise
    # Typically Python started in the repository root: its intinfer/ folder, which has the
    # sources but no compiled core, shadows the installed package.
    import os as _os

    raise ImportError(
        f"intinfer's compiled core (intinfer._core) is missing from {_os.path.dirname(__file__)}: "
        "if that is the source folder, it shadows the installed package (run Python from another "
        "folder), or build it in place with `pip install -e .`") from e
from .model import Model, TensorInfo, load


def quantize(model, example_inputs, calibration, observer: str = "minmax", **options):
    """Post-training quantization of a torch model to a .iif graph; see intinfer.export.quantize.
    (Imported lazily: torch is needed only to export, not to run.)"""
    from .export import quantize as _quantize

    return _quantize(model, example_inputs, calibration, observer=observer, **options)


def check(model, example_inputs, dynamic_shapes=None):
    """Every op of a torch model that intinfer.quantize cannot export, all at once (an empty list:
    it exports); see intinfer.export.check. `for p in intinfer.check(model, (x,)): print(p)`."""
    from .export import check as _check

    return _check(model, example_inputs, dynamic_shapes)


def sensitivity(model, example_inputs, data, loss=None, **options):
    """Per-layer Hessian sensitivity (top eigenvalue, trace) of a float torch model; see
    intinfer.hessian.sensitivity (imported lazily: it needs torch)."""
    from .hessian import sensitivity as _sensitivity

    return _sensitivity(model, example_inputs, data, loss, **options)


__all__ = ["Model", "ModelError", "TensorInfo", "available_paths", "check", "load", "max_num_threads", "quantize", "sensitivity"]
__version__ = "0.1.0"
