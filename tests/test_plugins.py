"""Plugins: built-ins and entry points load the same way; options are validated."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Literal

import pytest

from bench import registry
from bench.errors import BenchError
from tests.helpers import find_runs
from bench.options import Options
from bench.plugins import BUILTIN_ORIGIN

EXTERNAL_PLUGIN = '''
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.api import Batch, Method, MethodOptions, Metric, hookimpl


@dataclass
class TinyOptions(MethodOptions):
    lr: float = 1e-2
    hidden: int = 8


class TinyColorizer(Method):
    """A two-layer network, written against the public API only."""

    name = "tiny-external"
    description = "third-party test plugin"
    Options = TinyOptions

    def __init__(self, options, context):
        super().__init__(options, context)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, options.hidden, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(options.hidden, 2, 1)
        ).to(self.device)
        self.nets = {"net": self.net}
        self.optimizers = {"net": torch.optim.Adam(self.net.parameters(), lr=options.lr)}

    def train_step(self, batch: Batch):
        loss = F.l1_loss(self.net(batch.L), batch.ab)
        self.optimizers["net"].zero_grad()
        loss.backward()
        self.optimizers["net"].step()
        return {"l1": loss.detach()}

    def colorize(self, L):
        return torch.tanh(self.net(L))


class MeanAbsError(Metric):
    name = "mae-external"
    higher_is_better = False

    def update(self, pred, target):
        return (pred - target).abs().flatten(1).mean(1)


@hookimpl
def register_methods(register):
    register(TinyColorizer)


@hookimpl
def register_metrics(register):
    register(MeanAbsError)
'''


@pytest.fixture
def external_plugin(tmp_path):
    """A plugin package 'installed' the way pip does it: importable, with a dist-info entry point."""
    site = tmp_path / "site"
    (site / "tiny_colorizer").mkdir(parents=True)
    (site / "tiny_colorizer" / "__init__.py").write_text(EXTERNAL_PLUGIN)
    dist = site / "tiny_colorizer-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-colorizer\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[colorbench]\ntiny = tiny_colorizer\n")
    return site


def start_bench(site, *args, cwd) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_bench(site, *args, cwd) -> subprocess.CompletedProcess:
    return finish(start_bench(site, *args, cwd=cwd))


def test_external_plugin_is_listed_and_runs(external_plugin, tmp_path):
    # Two fresh processes, each loading the plugin from its entry point, side by side (one per core).
    out = tmp_path / "runs"
    listed = start_bench(external_plugin, "list", "--json", cwd=tmp_path)
    ran = start_bench(external_plugin, "run", "--methods", "tiny-external", "--dataset", "sample", "--size", "32",
                      "--budget", "3steps", "--seeds", "1", "--metrics", "psnr,mae-external", "-o", "hidden=4",
                      "--out", out, "--device", "cpu", "--json", cwd=tmp_path)
    listing, run = finish(listed), finish(ran)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    methods = {m["name"]: m for m in rows["methods"]}
    assert methods["tiny-external"]["plugin"] == "tiny-colorizer 0.3"
    assert methods["tiny-external"]["options"]["hidden"] == {"type": "int", "default": 8}
    assert methods["baseline"]["plugin"] == BUILTIN_ORIGIN
    assert {m["name"] for m in rows["metrics"]} >= {"psnr", "ssim", "mae-external"}

    assert run.returncode == 0, run.stderr
    result = json.loads((find_runs(out, "sample", "tiny-external", 0)[0] / "result.json").read_text())
    assert result["status"] == "ok" and result["method_plugin"] == "tiny-colorizer 0.3"
    assert result["budget"]["steps"] == 3 and result["config"]["method_options"]["hidden"] == 4
    assert result["metrics"]["mae-external"] > 0 and result["metrics"]["psnr"] > 5
    assert json.loads(run.stdout)[0]["method"] == "tiny-external"


def test_builtins_are_registered_with_their_origin():
    assert "baseline" in registry.list_methods()
    assert registry.list_methods("base*") == ["baseline"]
    assert {"psnr", "ssim"} <= set(registry.list_metrics())
    assert {"sample", "flowers"} <= set(registry.list_datasets())
    assert registry.methods().get("baseline").plugin == BUILTIN_ORIGIN


def test_unknown_names_suggest_close_matches():
    with pytest.raises(BenchError, match="Did you mean baseline"):
        registry.methods().get("baseliine")


def test_create_method_validates_options():
    method = registry.create_method("baseline", size=32, width=8, batch_size="4")
    assert method.options.width == 8 and method.options.batch_size == 4
    with pytest.raises(BenchError, match="unknown option colour"):
        registry.create_method("baseline", size=32, colour=1)
    with pytest.raises(BenchError, match="not a valid int"):
        registry.create_method("baseline", size=32, width="wide")
    with pytest.raises(BenchError, match="must be > 0"):
        registry.create_method("baseline", size=32, lr=0)


@dataclass
class ExampleOptions(Options):
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    limit: float | None = None


def test_option_conversion():
    options = ExampleOptions.from_dict({"mode": "b", "flag": "yes", "limit": "2.5"})
    assert (options.mode, options.flag, options.limit) == ("b", True, 2.5)
    assert ExampleOptions.from_dict({"limit": "none"}).limit is None
    with pytest.raises(BenchError, match="choose one of a, b"):
        ExampleOptions.from_dict({"mode": "c"})
    with pytest.raises(BenchError, match="not a valid bool"):
        ExampleOptions.from_dict({"flag": "maybe"})


def test_duplicate_registration_is_an_error():
    reg = registry.Registry("method")
    cls = type("X", (), {"name": "x"})
    reg.add(cls, "one")
    with pytest.raises(BenchError, match="registered twice"):
        reg.add(cls, "two")
    with pytest.raises(BenchError, match="without a `name`"):
        reg.add(type("Y", (), {}), "one")


def test_hookspecs_document_every_hook():
    from bench import hookspecs

    for name in ("register_methods", "register_datasets", "register_metrics"):
        assert getattr(hookspecs, name).__doc__.strip()
    assert textwrap.dedent(hookspecs.__doc__).strip()


def test_broken_plugin_is_named_in_a_one_line_error(tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin").mkdir(parents=True)
    (site / "broken_plugin" / "__init__.py").write_text("import does_not_exist_anywhere\n")
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[colorbench]\nbroken = broken_plugin\n")
    result = run_bench(site, "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "colorbench plugin 'broken' (broken_plugin) failed to load: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
