"""Relative-position biases of attention scores (MPNet's, T5's) through intinfer.quantize: a bias
computed from the sizes alone that depends on the head and the key-query distance j - i becomes
SOFTMAX's relative table (tabulated up to the longest sequence of the export); other biases are
refused with the reason. A hand-written attention with a learned [heads, 2R - 1] table, so that
the pattern is tested apart from transformers' MPNet (tests/test_hf_models.py)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import intinfer  # noqa: E402
from intinfer import qat  # noqa: E402
from intinfer.export import ExportError  # noqa: E402
from test_qat import engine_and_oracle  # noqa: E402

HEADS, WIDTH, VOCAB, REACH = 2, 8, 40, 16


class Attention(torch.nn.Module):
    """One attention layer whose scores get bias[h, f(i, j)] from a learned table: f = j - i (a
    relative position bias), or i alone (not one)."""

    def __init__(self, index="distance"):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.q, self.k, self.v = (torch.nn.Linear(WIDTH, WIDTH) for _ in range(3))
        self.table = torch.nn.Parameter(torch.randn(HEADS, 2 * REACH - 1) * 2)
        self.index = index

    def forward(self, ids, mask):
        b, s = ids.shape
        h = self.embed(ids)
        q, k, v = (f(h).view(b, s, HEADS, WIDTH // HEADS).transpose(1, 2) for f in (self.q, self.k, self.v))
        pos = torch.arange(s)
        where = pos[None, :] - pos[:, None] if self.index == "distance" else pos[:, None].expand(s, s)
        scores = q @ k.transpose(-1, -2) * 0.5 + self.table[:, where + REACH - 1].unsqueeze(0)
        scores = scores + (1.0 - mask[:, None, None, :].float()) * -10000.0
        y = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, s, WIDTH)
        return y


def batch(n, s, gen):
    ids = torch.randint(0, VOCAB, (n, s), generator=gen)
    lengths = torch.randint(1, s + 1, (n,), generator=gen)
    lengths[0] = s
    return ids, (torch.arange(s)[None, :] < lengths[:, None]).long()


def dims(max_seq=REACH):
    seq = torch.export.Dim("seq", max=max_seq) if max_seq else torch.export.Dim("seq")
    return ({0: torch.export.Dim("batch", max=8), 1: seq},) * 2


def test_a_distance_bias_becomes_the_softmax_table_and_runs_at_any_length():
    model = Attention().eval()
    gen = torch.Generator().manual_seed(1)
    calibration = [batch(4, 3 + i, gen) for i in range(8)]
    q = intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=dims())
    softmax, = [n for n in q.graph.nodes if n.op == "softmax"]
    torch.testing.assert_close(softmax.attrs["relative"], model.table.detach())  # every distance up to REACH
    m = q.load(num_threads=2)
    for n, s in [(2, 5), (1, REACH), (3, 11)]:
        ids, mask = batch(n, s, gen)
        with torch.no_grad():
            want = model(ids, mask)
        np.testing.assert_allclose(q.graph.run(ids, mask)[q.graph.outputs[0]].numpy(), want.numpy(), atol=1e-5)
        keep = mask.bool()
        got = torch.from_numpy(m.run([ids.numpy(), mask.numpy()]))[keep].double()
        cosine = torch.nn.functional.cosine_similarity(got, want[keep].double(), dim=-1)
        assert cosine.mean() >= 0.99 and cosine.min() >= 0.95, (n, s, cosine.mean(), cosine.min())


def test_engine_equals_the_qat_eval_model_with_a_relative_bias():
    model = Attention().eval()
    gen = torch.Generator().manual_seed(2)
    qm = qat.prepare(model, batch(2, 6, gen), dynamic_shapes=dims()).train()
    with torch.no_grad():
        for i in range(4):
            qm(*batch(4, 3 + i, gen))
    qm.eval()
    for n, s in [(2, 7), (1, REACH)]:
        xs = batch(n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)


def test_a_bias_by_query_position_alone_is_refused_with_the_reason():
    model = Attention(index="query").eval()
    gen = torch.Generator().manual_seed(3)
    problems = intinfer.check(model, batch(2, 6, gen), dims())
    assert len(problems) == 1 and "nor a relative position bias" in str(problems[0]), problems


def test_a_relative_bias_needs_a_longest_sequence():
    model = Attention().eval()
    gen = torch.Generator().manual_seed(4)
    with pytest.raises(ExportError, match=r"give the sequence dimension a maximum"):
        intinfer.quantize(model, batch(2, 6, gen), [batch(2, 6, gen)], dynamic_shapes=dims(max_seq=None))
