"""ISA hygiene (docs/kernels.md, ruy's rule against ODR violations): an object compiled with ISA
flags (-mavx2, -mavxvnni, -mavx512vnni, -march=armv8.2-a+dotprod/+i8mm) defines no weak or unique symbol (an
inline function, a template instance, std:: container code: the linker keeps one copy of each
for every caller, and if it keeps the ISA-flagged one, a baseline path on an older CPU executes
AVX2 or SDOT and dies of SIGILL), and exports nothing but its kernel entry points, whose names
end in the ISA suffix of their file (gemm_u8s8_4x16c2__avx2 in gemm_avx2.cc).

The objects are read with nm from the native CMake build of intinfer_core and from the aarch64
cross build; the same checker must flag a small ISA-flagged object that breaks the rule."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import build_native_tool

# nm's types of weak (W, w, V, v) and unique global (u) definitions.
WEAK_OR_UNIQUE = set("WwVvu")
OBJECTS = "CMakeFiles/intinfer_core.dir/csrc/kernels"


def isa_violations(obj: Path, isa: str, nm: str = "nm") -> list:
    """The symbols of `obj` (compiled with the flags of `isa`, e.g. "avx2") that break the rule,
    as "type demangled-name": every weak or unique definition, and every other external
    definition that is not a kernel entry point (its name lacks "__<isa>")."""
    out = subprocess.run([nm, "--defined-only", "-P", str(obj)], capture_output=True, text=True, check=True)
    # -P: "name type value size" per line; mangled names hold no spaces.
    symbols = [line.split()[:2] for line in out.stdout.splitlines() if line.strip()]
    demangled = subprocess.run(["c++filt"], input="\n".join(name for name, _ in symbols), capture_output=True,
                               text=True, check=True).stdout.splitlines()
    bad = []
    for (_, kind), name in zip(symbols, demangled):
        external = kind.isupper() or kind == "i"  # "i": a GNU indirect function, global
        if kind in WEAK_OR_UNIQUE or (external and f"__{isa}" not in name):
            bad.append(f"{kind} {name}")
    return bad


def isa_objects(build: Path, arch_dir: str) -> dict:
    """{object: isa} for the ISA-flagged kernel objects of a build (the ISA is the file's suffix)."""
    return {obj: re.fullmatch(r".*_(\w+?)\.cc\.o", obj.name)[1] for obj in sorted((build / OBJECTS / arch_dir).glob("*.o"))}


def test_x86_isa_objects_export_only_kernel_entry_points():
    build = build_native_tool("intinfer_core").parent
    objects = isa_objects(build, "x86")
    if not objects:
        pytest.skip("not an x86 build: no AVX2 objects")
    assert {o.name for o in objects} >= {"gemm_avx2.cc.o", "gemm_avxvnni.cc.o", "gemm_avx512vnni.cc.o",
                                         "dwconv_avx2.cc.o"}, objects
    assert set(objects.values()) == {"avx2", "avxvnni", "avx512vnni"}, objects
    bad = {obj.name: v for obj, isa in objects.items() if (v := isa_violations(obj, isa))}
    assert not bad, bad


def test_aarch64_isa_objects_export_only_kernel_entry_points():
    """Only the SDOT and USMMLA GEMMs get flags on aarch64 (NEON is baseline there)."""
    from test_arm import cross_tool  # needs the built Python package; the x86 test does not

    build = Path(cross_tool("aarch64", "intinfer_core")[-1]).parent
    objects = {obj: isa for obj, isa in isa_objects(build, "arm").items() if isa in ("neondot", "neoni8mm")}
    assert {o.name for o in objects} == {"gemm_neondot.cc.o", "gemm_neoni8mm.cc.o"}, objects
    bad = {obj.name: v for obj, isa in objects.items() if (v := isa_violations(obj, isa, "aarch64-linux-gnu-nm"))}
    assert not bad, bad


BROKEN_UNIT = """
#include <vector>
// An inline function with external linkage, kept out of line: a weak definition.
__attribute__((noinline)) inline int twice(int x) { return 2 * x; }
// Not an entry point, yet external.
int helper(int x) { return x + 1; }
// The entry point, whose push_back instantiates std::vector's growth path out of line.
int sum_twice__avx2(const std::vector<int>& v) {
  std::vector<int> w;
  for (int x : v) w.push_back(twice(helper(x)));
  int s = 0;
  for (int x : w) s += x;
  return s;
}
"""


def test_checker_flags_a_broken_unit(tmp_path):
    """The checker is not vacuous: an AVX2-flagged unit with an inline function, std::vector
    code and an external helper is flagged for each, and its entry point is not."""
    src = tmp_path / "broken_avx2.cc"
    src.write_text(BROKEN_UNIT)
    obj = tmp_path / "broken_avx2.cc.o"
    subprocess.run(["c++", "-O2", "-mavx2", "-mfma", "-c", str(src), "-o", str(obj)], check=True)
    bad = isa_violations(obj, "avx2")
    assert any(re.fullmatch(r"[Ww] twice\(int\)", b) for b in bad), bad
    assert any(b[0] in "Ww" and "std::vector<int" in b for b in bad), bad
    assert "T helper(int)" in bad, bad
    assert not any("sum_twice__avx2" in b for b in bad), bad
