"""`bench new-method`: the template package installs, passes its own tests and runs in the harness as it is."""

import json
import os
import subprocess
import sys

import pytest

from bench.scaffold import new_method
from bench.errors import BenchError


def test_bad_or_taken_names_are_refused(tmp_path):
    with pytest.raises(BenchError, match="lowercase letters"):
        new_method("My Colorizer", tmp_path)
    with pytest.raises(BenchError, match="taken by colorbench"):
        new_method("pix2pix", tmp_path)
    new_method("fine-name", tmp_path)
    with pytest.raises(BenchError, match="already exists"):
        new_method("fine-name", tmp_path)


@pytest.mark.slow
def test_template_installs_passes_its_tests_and_runs(tmp_path, run_cli):
    code, stdout, _ = run_cli("new-method", "my-colorizer", "--dir", tmp_path)
    assert code == 0
    package = tmp_path / "colorbench-my-colorizer"
    assert stdout.strip() == str(package)
    venv = tmp_path / "venv"
    # A venv that sees this colorbench; pip as a user runs it (no network needed: --no-build-isolation).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                              "--no-build-isolation", "-e", str(package)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    listing = subprocess.run([python, "-m", "bench", "list", "--json"], capture_output=True, text=True, env=env)
    methods = {m["name"]: m for m in json.loads(listing.stdout)["methods"]}
    assert methods["my-colorizer"]["plugin"] == "colorbench-my-colorizer 0.1.0"
    assert methods["my-colorizer"]["options"]["width"] == {"type": "int", "default": 32}
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark"],
                           cwd=package, capture_output=True, text=True, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "3 passed" in tests.stdout
