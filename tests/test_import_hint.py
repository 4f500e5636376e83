"""Importing intinfer from a folder that holds its sources but not its compiled core (the
repository root, which shadows the installed package) says so and what to do."""

import shutil
import subprocess
import sys
from pathlib import Path

import intinfer


def test_source_folder_without_core_gives_a_hint(tmp_path):
    package = Path(intinfer.__file__).parent
    shutil.copytree(package, tmp_path / "intinfer", ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    # -S: no site packages, so neither an installed intinfer nor the editable install's finder
    # is found before the copy on sys.path[0].
    out = subprocess.run([sys.executable, "-S", "-c", "import intinfer"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 1
    assert "ImportError: intinfer's compiled core (intinfer._core) is missing from " + str(tmp_path / "intinfer") \
        in out.stderr, out.stderr
    assert "pip install -e ." in out.stderr and "another folder" in out.stderr
