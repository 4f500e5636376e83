"""Kernel paths: the engine's list of the paths this CPU can run, the default, and INTINFER_ISA."""

import pytest

import intinfer
from conftest import load_graph
from intinfer.builder import GraphBuilder


def tiny():
    g = GraphBuilder()
    g.output(g.clamp(g.input("x", (1,), "uint8", 1.0, 0), 0, 255))
    return g


def test_reference_first_richest_is_the_default():
    paths = intinfer.available_paths()
    assert paths[0] == "ref" and len(set(paths)) == len(paths)
    assert load_graph(tiny()).isa == paths[-1]


@pytest.mark.parametrize("path", intinfer.available_paths())
def test_each_path_can_be_forced(path):
    assert load_graph(tiny(), isa=path).isa == path


def test_a_path_this_cpu_lacks_is_refused_with_the_list():
    missing = next(p for p in ("avx2", "avxvnni", "avx512vnni", "neon", "neondot", "neoni8mm") if p not in intinfer.available_paths())
    with pytest.raises(intinfer.ModelError, match=f"INTINFER_ISA='{missing}' is not a path .*\\(available: ref"):
        load_graph(tiny(), isa=missing)
