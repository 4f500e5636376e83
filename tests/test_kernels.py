"""Micro-kernel tests: the native tester of tests/kernels/ (intinfer-kernel-tests) runs every row
of every kernel table (csrc/kernels/tables.h) against the reference kernels bit for bit and
checks select(); here it is built and run natively, and cross-built for aarch64 and armv7 and
run under qemu-user (test_arm.cross_tool: skips without the cross tool chains, fails in CI).

The tester reports each row as PASS, FAIL or "SKIP <row> (needs <features>)"; these tests check
that it skips a row only for a feature the CPU really lacks."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import build_native_tool

ROW = re.compile(r"^(PASS|FAIL|SKIP) (\S+)(?: \(needs ([^)]*)\))?", re.M)
CLOSING = re.compile(r"(\d+) passed, (\d+) failed(?:, (\d+) skipped)?")
REFERENCE_ROWS = {"select", "gemm/gemm_u8s8__ref", "dwconv/conv2d_u8s8__ref", "elementwise/ref", "pool/ref",
                  "transformer/ref", "matmul/matmul_u8__ref"}

# /proc/cpuinfo flags -> the tester's feature names (csrc/core/cpu.cc detects the same).
CPUINFO_FEATURES = {"avx2": {"avx2", "fma"}, "avxvnni": {"avx_vnni"},
                    "avx512vnni": {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}, "neon": {"asimd"}, "neondot": {"asimddp"},
                    "neoni8mm": {"i8mm"}}


def run_tester(command: list) -> tuple:
    """Runs the tester; returns ({passed row}, {skipped row: {missing feature}}) after checking
    that it passed and that its closing line counts the rows it reported."""
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    rows = ROW.findall(out.stdout)
    closing = CLOSING.fullmatch(out.stdout.strip().splitlines()[-1])
    assert closing, report
    passed = {name for status, name, _ in rows if status == "PASS"}
    skipped = {name: set(needs.split()) for status, name, needs in rows if status == "SKIP"}
    assert [int(n or 0) for n in closing.groups()] == [len(passed), 0, len(skipped)], report
    assert len(passed) + len(skipped) == len(rows), report
    assert REFERENCE_ROWS <= passed, report
    return passed, skipped


def test_kernel_tables_native():
    """Every row whose features this CPU has runs and passes; the others (on this project's
    AVX2-only Zen 3 host: the AVX-VNNI and AVX-512 VNNI GEMMs) are skipped, and only for a feature
    the CPU lacks."""
    exe = build_native_tool("intinfer-kernel-tests")
    passed, skipped = run_tester([str(exe)])
    text = Path("/proc/cpuinfo").read_text()
    flags = set(re.findall(r"^(?:flags|Features)\s*:(.*)$", text, re.M)[0].split())
    have = {name for name, needs in CPUINFO_FEATURES.items() if needs <= flags}
    for row, needs in skipped.items():
        assert needs and not needs & have, f"{row} skipped for {needs}, which this CPU has"
    if "avx2" in have:
        assert "gemm/gemm_u8s8_4x16c2__avx2" in passed and "dwconv/dwconv_u8s8_16c2__avx2" in passed


@pytest.mark.parametrize("arch, cpu, missing", [("aarch64", "max", set()),
                                                ("aarch64", "cortex-a53", {"neondot", "neoni8mm"}),
                                                ("armv7", None, set())])
def test_kernel_tables_on_arm(arch, cpu, missing):
    """Under qemu: `-cpu max` runs every aarch64 row (neon, neondot, neoni8mm); a Cortex-A53
    has neither SDOT nor USMMLA, so exactly the rows that need them are skipped; armv7 runs its
    NEON rows."""
    # Imported here: test_arm needs the built Python package, the native test above does not.
    from test_arm import cross_tool

    command = cross_tool(arch, "intinfer-kernel-tests")
    if cpu is not None:
        command[command.index("-cpu") + 1] = cpu
    passed, skipped = run_tester(command)
    assert set().union(*skipped.values()) == missing, skipped
    suffixes = {"aarch64": ("__neon", "__neondot", "__neoni8mm"), "armv7": ("__neon",)}[arch]
    for suffix in suffixes:
        ran = [row for row in passed if row.endswith(suffix)]
        assert ran if suffix[2:] not in missing else not ran, (suffix, passed)
