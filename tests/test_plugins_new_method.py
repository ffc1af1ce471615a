"""`bench new-method`: the template package installs, passes its own tests and runs in the harness as it is."""

import importlib.metadata
import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

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


def venv_seeing_this_environment(venv: Path) -> str:
    """A new venv whose interpreter also sees the packages of the one running the tests (this colorbench,
    torch, pytest) -- not the base interpreter's, which ``--system-site-packages`` would give from inside a
    venv. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    inner = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    outer = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()])
    # An `import` line runs site.addsitedir, so the outer .pth files (editable installs) apply too.
    lines = [f"import site; site.addsitedir({folder!r})" for folder in outer if Path(folder).is_dir()]
    (Path(inner) / "outer-environment.pth").write_text("\n".join(lines) + "\n")
    return python


def build_isolation_flags(package: Path) -> list[str]:
    """Build the template as pip would for a user (in isolation, with the setuptools its pyproject asks for,
    from the package index) unless this environment's setuptools already satisfies it: then offline."""
    from packaging.requirements import Requirement

    requirement = Requirement(tomllib.loads((package / "pyproject.toml").read_text())["build-system"]["requires"][0])
    try:
        have = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return []
    return ["--no-build-isolation"] if requirement.specifier.contains(have) else []


@pytest.mark.slow
def test_template_installs_passes_its_tests_and_runs(tmp_path, run_cli):
    code, stdout, _ = run_cli("new-method", "my-colorizer", "--dir", tmp_path)
    assert code == 0
    package = tmp_path / "colorbench-my-colorizer"
    assert stdout.strip() == str(package)
    python = venv_seeing_this_environment(tmp_path / "venv")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                              *build_isolation_flags(package), "-e", str(package)], capture_output=True, text=True)
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
