"""Launchers: `--jobs N` and Ray give the sequential run's numbers; failures are recorded; dead workers retried.

The Ray tests start a local Ray (``ray.init(num_cpus=2)``) once for the module and skip, with the
reason, where Ray is not installed (``pip install 'colorbench[ray]'``).
"""

import json
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from bench import registry
from bench.cli import main
from bench.engine.budget import Budget
from bench.errors import BenchError
from bench.plugins import BUILTIN_ORIGIN
from bench.engine.context import RunConfig
from bench.runner import run_benchmark
from tests.helpers import find_runs

# Every built-in method (those random at test time too), one seed each (7 runs, two at a time under --jobs 2), with
# the smallest networks that still run each code path (-o KEY=VALUE reaches each method that has KEY; ResNet18 has no
# width option).
BUILT_IN = [e.name for e in registry.methods().entries() if e.plugin == BUILTIN_ORIGIN]
GRID = ("--methods", ",".join(BUILT_IN), "--seeds", "1", "-o", "width=4", "-o", "ngf=4", "-o", "ndf=4",
        "-o", "baseline.batch_size=2", "-o", "pix2pix-resnet18-scratch.batch_size=2")
TINY = ("--dataset", "sample", "--size", "32", "--budget", "2steps", "--device", "cpu", "--metrics", "psnr")
# A baseline that works and one plugin method per way a worker can fail (all baselines: -o width reaches each).
FAILURE_GRID = ("--methods", "baseline,launch-raises,launch-dies-once,launch-dies-always", "--seeds", "1",
                "-o", "width=4", "-o", "batch_size=2")

# Methods whose workers fail in each way a worker can; installed the way pip does it (a dist-info
# entry point on PYTHONPATH), so the launchers' worker processes load them too.
PLUGIN = '''
import os
import time
from pathlib import Path

from bench.api import hookimpl
from bench.methods.baseline import RegressionBaseline

MARKERS = Path(os.environ.get("LAUNCH_TEST_MARKERS", "."))


class Raises(RegressionBaseline):
    name = "launch-raises"

    def train_step(self, batch):
        raise RuntimeError("boom in a worker")


class DiesOnce(RegressionBaseline):
    """Its worker process dies at the first step of the first try (a marker file remembers)."""
    name = "launch-dies-once"

    def train_step(self, batch):
        marker = MARKERS / f"died-{self.options.lr}"
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return super().train_step(batch)


class DiesAlways(RegressionBaseline):
    name = "launch-dies-always"

    def train_step(self, batch):
        os._exit(1)


class Slow(RegressionBaseline):
    """Sleeps each step; at its third, says so and waits for a second run to get there (at most 2 min),
    so that a test can stop two running runs mid-way. Once the test has stopped them (a ``rerun-<lr>``
    marker), it no longer sleeps: the rerun goes at full speed."""
    name = "launch-slow"

    def train_step(self, batch):
        if not (MARKERS / f"rerun-{self.options.lr}").exists():
            time.sleep(0.05)  # the window in which the stop reaches the runs: 57 steps, about 3 s
        self.steps_taken = getattr(self, "steps_taken", 0) + 1
        if self.steps_taken == 3:  # markers named by lr: one test's runs wait for each other only
            (MARKERS / f"slow-{self.options.lr}-{os.getpid()}").touch()
            deadline = time.monotonic() + 120
            while len(list(MARKERS.glob(f"slow-{self.options.lr}-*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().train_step(batch)


@hookimpl
def register_methods(register):
    for cls in (Raises, DiesOnce, DiesAlways, Slow):
        register(cls)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory, install_plugin):
    """The failing methods as an installed package: PYTHONPATH for workers, registered here for the driver."""
    site, markers = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("markers")
    patch = pytest.MonkeyPatch()
    patch.setenv("LAUNCH_TEST_MARKERS", str(markers))  # read by the plugin module as it loads
    with install_plugin(site, "launch_test_plugin", PLUGIN):
        patch.undo()
        yield {"PYTHONPATH": str(site) + ":" + ":".join(sys.path), "LAUNCH_TEST_MARKERS": str(markers)}


def use_plugin_site(plugin_site: dict, monkeypatch) -> None:
    """For --jobs workers: spawned processes take this process's sys.path and environment."""
    monkeypatch.syspath_prepend(plugin_site["PYTHONPATH"].split(":")[0])
    monkeypatch.setenv("LAUNCH_TEST_MARKERS", plugin_site["LAUNCH_TEST_MARKERS"])


def bench_run(*argv) -> int:
    return main(["-q", "run", *[str(a) for a in argv]])


def metrics_by_run(out) -> dict:
    """method -> (status, metrics, per-image PSNR) of every run under ``out``."""
    found = {}
    for method in BUILT_IN:
        (folder,) = find_runs(out, "sample", method, 0)
        result = json.loads((folder / "result.json").read_text())
        found[method] = (result["status"], result["metrics"], result.get("per_image", {}).get("psnr"))
    return found


def failure_statuses(out) -> dict:
    """method -> (status, error) of the failure grid's runs."""
    status = {}
    for method in ("baseline", "launch-raises", "launch-dies-once", "launch-dies-always"):
        (folder,) = find_runs(out, "sample", method, 0)
        result = json.loads((folder / "result.json").read_text())
        status[method] = (result["status"], result["error"])
    return status


def index_rows(out) -> dict:
    """path -> status of the SQLite index, with the metric rows counted."""
    db = sqlite3.connect(out / "runs.sqlite")
    rows = dict(db.execute("SELECT path, status FROM runs").fetchall())
    metric_rows = db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    db.close()
    return rows | {"_metric_rows": metric_rows}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The 4-run grid run one after another in this process: the numbers every launcher must give."""
    out = tmp_path_factory.mktemp("sequential")
    assert bench_run(*GRID, *TINY, "--out", out) == 0
    return metrics_by_run(out), index_rows(out)


@pytest.mark.slow
def test_jobs_gives_the_sequential_numbers_and_index(sequential, tmp_path, run_cli, capsys):
    out = tmp_path / "runs"
    assert bench_run(*GRID, *TINY, "--out", out, "--jobs", "2") == 0
    expected_metrics, expected_rows = sequential
    assert metrics_by_run(out) == expected_metrics  # bit-identical, per image
    assert index_rows(out) == expected_rows  # 7 runs + 2 reference rows, indexed by the driver
    for folder in find_runs(out, "sample", "baseline"):  # with the threads of a sequential run
        threads = json.loads((folder / "result.json").read_text())["environment"]["cpu_threads"]
        assert threads == torch.get_num_threads()
    # Re-running skips every finished run (no worker is started); the run skipped for want of weights is tried again.
    capsys.readouterr()
    code, stdout, _ = run_cli("run", *GRID, *TINY, "--out", out, "--jobs", "2", "--json")
    printed = json.loads(stdout)
    assert code == 0 and {r["action"] for r in printed if r["status"] == "ok"} == {"skipped (already done)"}
    assert {r["method"] for r in printed if r["status"] != "ok"} == {"pix2pix-resnet18"}


@pytest.mark.slow
def test_jobs_retries_a_dead_worker_and_records_failures(plugin_site, tmp_path, monkeypatch):
    use_plugin_site(plugin_site, monkeypatch)
    out = tmp_path / "runs"
    code = bench_run(*FAILURE_GRID, *TINY, "--out", out, "--jobs", "2", "--cpus-per-run", "1")  # a core each
    assert code == 3  # runs failed: said by the exit status, the others kept
    status = failure_statuses(out)
    assert status["baseline"] == ("ok", None)
    assert status["launch-raises"] == ("failed", "RuntimeError: boom in a worker")
    assert status["launch-dies-once"] == ("ok", None)  # the second try succeeded
    assert status["launch-dies-always"][0] == "failed" and "worker lost" in status["launch-dies-always"][1]
    rows = index_rows(out)
    assert sorted(v for k, v in rows.items() if "launch" in k or "baseline" in k) == ["failed", "failed", "ok", "ok"]


def signal_when_started(markers: Path, lr: float, signum: int) -> threading.Thread:
    """Sends ``signum`` to this process (the driver) once two slow runs of this lr have taken a few steps."""
    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len(list(markers.glob(f"slow-{lr}-*"))) >= 2:
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def slow_grid(tmp_path, lr: float, **settings) -> RunConfig:
    """Three slow runs: two run at once, one waits."""
    return RunConfig(methods=["launch-slow"], dataset="sample", budget=Budget.parse("60steps"),
                     device=torch.device("cpu"), out=tmp_path / "runs", size=32, seeds=[0, 1, 2],
                     method_options={"launch-slow": {"width": 4, "depth": 1, "batch_size": 2, "lr": lr}},
                     metrics=["psnr"], samples=0, **settings)


def check_stopped_then_resumed(config, launch_again, markers: Path) -> None:
    """The two running runs saved their state and said so, the queued one never started; the same
    command again resumes the two and runs the third (without the slow runs' sleeps)."""
    states = {}
    for seed in (0, 1, 2):
        folder = find_runs(config.out, "sample", "launch-slow", seed)
        result = folder[0] / "result.json" if folder else None
        states[seed] = json.loads(result.read_text())["status"] if result and result.exists() else None
        if states[seed]:
            assert (folder[0] / "resume.pt").is_file()
    assert sorted(states.values(), key=str) == [None, "interrupted", "interrupted"]
    (markers / f"rerun-{config.method_options['launch-slow']['lr']}").touch()
    rerun = launch_again()
    assert sorted(r["_action"].split(" at ")[0] for r in rerun) == ["resumed", "resumed", "started"]
    assert all(r["status"] == "ok" and r["budget"]["steps"] == 60 for r in rerun)


@pytest.mark.slow
def test_jobs_ctrl_c_saves_running_runs_and_rerun_resumes(plugin_site, tmp_path, monkeypatch):
    use_plugin_site(plugin_site, monkeypatch)
    config = slow_grid(tmp_path, lr=0.001, jobs=2, cpus_per_run=1)  # a core each: 2 x 2 threads would contend
    markers = Path(plugin_site["LAUNCH_TEST_MARKERS"])
    signal_when_started(markers, 0.001, signal.SIGINT)
    with pytest.raises(BenchError, match="stopped by SIGINT"):
        run_benchmark(config)
    check_stopped_then_resumed(config, lambda: run_benchmark(config), markers)


@pytest.mark.parametrize("args, message", [
    (("--jobs", "0"), "--jobs 0: at least 1"),
    (("--launcher", "ray", "--jobs", "2"), "--jobs 2: for --launcher local"),
    (("--ray-address", "auto"), "--ray-address auto: only with --launcher ray"),
    (("--cpus-per-run", "0"), "--cpus-per-run 0: at least 1"),
])
def test_bad_launcher_settings_give_one_line_errors(run_cli, tmp_path, args, message):
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--out", tmp_path / "out", *args)
    assert code == 2 and message in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "sample").exists()


def test_ray_missing_says_how_to_install(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--out", tmp_path / "out", "--launcher", "ray")
    assert code == 2 and "pip install 'colorbench[ray]'" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "sample").exists()


@pytest.fixture(scope="module")
def local_ray(plugin_site):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'colorbench[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": plugin_site})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_sequential_numbers_and_index(sequential, local_ray, tmp_path):
    out = tmp_path / "runs"
    assert bench_run(*GRID, *TINY, "--out", out, "--launcher", "ray") == 0
    expected_metrics, expected_rows = sequential
    assert metrics_by_run(out) == expected_metrics
    assert index_rows(out) == expected_rows


@pytest.mark.slow
def test_ray_records_a_raising_task_and_retries_a_killed_worker(local_ray, tmp_path):
    out = tmp_path / "runs"
    # Two tasks at once (1 CPU each), so that the retried workers start side by side.
    code = bench_run(*FAILURE_GRID, *TINY, "-o", "launch-dies-once.lr=0.002", "--out", out, "--launcher", "ray",
                     "--cpus-per-run", "1")
    assert code == 3
    status = failure_statuses(out)
    assert status["baseline"] == ("ok", None)
    assert status["launch-raises"] == ("failed", "RuntimeError: boom in a worker")
    assert status["launch-dies-once"] == ("ok", None)  # Ray ran it again in a new worker
    assert status["launch-dies-always"][0] == "failed"
    assert "worker lost" in status["launch-dies-always"][1] and "after 2 tries" in status["launch-dies-always"][1]
    rows = index_rows(out)
    assert sorted(v for k, v in rows.items() if "launch" in k or "baseline" in k) == ["failed", "failed", "ok", "ok"]


@pytest.mark.slow
def test_ray_started_here_sigterm_cancels_queued_runs_and_rerun_resumes(plugin_site, tmp_path, monkeypatch):
    """With no address the launcher starts Ray itself (and keeps our SIGTERM handler, which ray.init
    replaces). Last in the module: it ends the module's Ray first."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'colorbench[ray]')")
    ray.shutdown()
    for key, value in plugin_site.items():  # Ray started here passes this environment to its workers
        monkeypatch.setenv(key, value)
    config = slow_grid(tmp_path, lr=0.002, launcher="ray", cpus_per_run=1)  # two at once on 2 CPUs
    markers = Path(plugin_site["LAUNCH_TEST_MARKERS"])
    signal_when_started(markers, 0.002, signal.SIGTERM)
    with pytest.raises(BenchError, match="stopped by SIGTERM"):
        run_benchmark(config)
    assert not ray.is_initialized()  # the launcher that started Ray also ended it
    check_stopped_then_resumed(config, lambda: run_benchmark(config), markers)
