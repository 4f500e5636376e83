"""The real model: pretrained EfficientNet-Lite0 exported to int8 and checked against fp32 on
held-out crops of real pictures (examples/efficientnet_lite0.py, smaller sets)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="installed by scripts/setup.sh")
pytest.importorskip("skimage", reason="installed by scripts/setup.sh")

import torch  # noqa: E402

import intinfer  # noqa: E402
from conftest import load_example  # noqa: E402

example = load_example("efficientnet_lite0")


def test_efficientnet_lite0_int8_tracks_fp32():
    model = example.load_model()
    calib = example.crops(example.CALIBRATION_PICTURES, 32, seed=0)
    held_out = example.crops(example.HELD_OUT_PICTURES, 16, seed=1)
    q = intinfer.quantize(model, (held_out[:1],), calib.split(8), observer="minmax")
    m = intinfer.load(q.to_bytes(), num_threads=2)
    got = m.run(held_out.numpy())
    with torch.no_grad():
        ref = model(held_out).numpy()
    acc = example.agreement(ref, got)
    print(f"\nEfficientNet-Lite0 int8 vs fp32 on 16 held-out crops: {acc}")
    # Far above what ONNX Runtime's and torch's own int8 flows reach here (logit cosine ~0.91).
    assert acc["cosine_mean"] >= 0.98
    assert acc["top5_overlap"] >= 0.8
    # The file holds int8 weights: about 4x smaller than the fp32 state dict.
    fp32 = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert len(q.to_bytes()) < fp32 / 3.5
    # The cost report against published figures: 4.7M parameters and 0.4G multiply-adds at
    # 224x224 (the TensorFlow EfficientNet-Lite README gives 407M; docs/cost.md on the gap). The
    # engine counts what torch's flop counter counts on the float model, product for product;
    # its parameters are fewer by the batch norms folded into the convolutions.
    from intinfer.cost import torch_cost

    cost = m.cost({m.inputs[0].name: [1, 3, 224, 224]})
    assert cost.totals["macs"] == torch_cost(model, (held_out[:1],)).totals["macs"]
    assert 0.37e9 < cost.totals["macs"] < 0.41e9
    assert 4.55e6 < cost.totals["parameters"] < 4.7e6
