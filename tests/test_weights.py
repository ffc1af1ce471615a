"""The weight store: lookup order, hash checks, offline messages, `bench weights`. Never downloads."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
from pathlib import Path

import pytest
import torch

from bench.errors import BenchError, Unavailable
from bench.weights import KNOWN_WEIGHTS, WeightFile, WeightStore



@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """A private, empty torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "torch" / "hub" / "checkpoints"
    path.mkdir(parents=True)
    return path


def state_bytes(value: float) -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.full((3,), value)}, buffer)
    return buffer.getvalue()


@pytest.fixture
def test_file(monkeypatch) -> tuple[WeightFile, bytes]:
    """A known file published torchvision-style: the sha256 prefix sits in its name."""
    data = state_bytes(1.5)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    file = WeightFile(key="test-net", title="Test net weights", filename=f"test-net-{prefix}.pth",
                      url=f"https://example.invalid/test-net-{prefix}.pth", sha256=prefix, needed_by=("method test",))
    monkeypatch.setitem(KNOWN_WEIGHTS, file.key, file)
    return file, data


def test_lookup_order_weights_dir_then_hub_cache(tmp_path, hub_dir, test_file):
    file, data = test_file
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (hub_dir / file.filename).write_bytes(data)
    store = WeightStore(weights_dir, allow_download=False)
    assert store.locate(file.key).source == "torch hub cache"
    (weights_dir / file.filename).write_bytes(data)
    located = WeightStore(weights_dir, allow_download=False).locate(file.key)
    assert located.source == "weights dir" and located.path == weights_dir / file.filename
    assert WeightStore(weights_dir).load(file.key)["w"].tolist() == [1.5, 1.5, 1.5]


def test_environment_variable_and_explicit_dir(tmp_path, hub_dir, test_file, monkeypatch):
    file, data = test_file
    env_dir, explicit = tmp_path / "env", tmp_path / "explicit"
    env_dir.mkdir(), explicit.mkdir()
    (env_dir / file.filename).write_bytes(data)
    monkeypatch.setenv("COLORBENCH_WEIGHTS", str(env_dir))
    assert WeightStore().locate(file.key).path == env_dir / file.filename
    assert not WeightStore(explicit).locate(file.key).found  # an explicit folder replaces the variable
    with pytest.raises(BenchError, match="does not exist"):
        WeightStore(tmp_path / "nowhere")


def test_wrong_hash_is_refused(tmp_path, hub_dir, test_file):
    file, data = test_file
    (tmp_path / file.filename).write_bytes(state_bytes(2.5))  # right name, wrong bytes
    store = WeightStore(tmp_path, allow_download=False)
    located = store.locate(file.key)
    assert not located.found and f"refused {tmp_path / file.filename}: sha256 does not match" in located.problems[0]
    with pytest.raises(Unavailable, match="sha256 does not match"):
        store.path(file.key)
    (hub_dir / file.filename).write_bytes(data)  # a good copy further down the order is still found
    assert store.locate(file.key).source == "torch hub cache"


def test_wrong_hash_refused_for_full_sha256_files(tmp_path, hub_dir):
    (tmp_path / "alexnet-features-lpips.pth").write_bytes(b"not the trunk")
    with pytest.raises(Unavailable, match="refused .*alexnet-features-lpips.pth: sha256 does not match d31a30dd"):
        WeightStore(tmp_path, allow_download=False).path("lpips-alexnet")


def test_shared_lpips_trunk_is_accepted_by_full_sha256(hub_dir, shared_weights_dir):
    assert WeightStore(shared_weights_dir).path("lpips-alexnet") == shared_weights_dir / "alexnet-features-lpips.pth"


def test_offline_message_names_file_and_place(tmp_path, hub_dir):
    with pytest.raises(Unavailable) as error:
        WeightStore(allow_download=False).path("fid-inception")
    message = str(error.value)
    assert message.startswith(f"FID Inception weights unavailable (put pt_inception-2015-12-05-6726825d.pth at {hub_dir} or in $COLORBENCH_WEIGHTS")
    assert KNOWN_WEIGHTS["fid-inception"].url in message and "downloads disabled by COLORBENCH_OFFLINE" in message


def test_tests_run_offline(hub_dir):
    assert WeightStore().allow_download is False  # conftest sets COLORBENCH_OFFLINE=1


def test_download_goes_to_the_hub_cache_with_hash_check_and_progress(hub_dir, test_file, monkeypatch):
    file, data = test_file
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix, progress))
        Path(dst).write_bytes(data)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = WeightStore(allow_download=True).path(file.key)
    assert path == hub_dir / file.filename and calls == [(file.url, file.sha256, True)]


@pytest.mark.parametrize("failure, reason", [
    (RuntimeError('invalid hash value (expected "7be5be79", got "00000000")'), "refused download"),
    (urllib.error.URLError("no route to host"), "download failed: no route to host"),
])
def test_failed_downloads_are_unavailable(hub_dir, monkeypatch, failure, reason):
    def fake_download(*args, **kwargs):
        raise failure

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(Unavailable, match=reason):
        WeightStore(allow_download=True).path("lpips-alexnet")


def test_download_with_wrong_full_sha256_is_deleted(hub_dir, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst, **kwargs: Path(dst).write_bytes(b"junk"))
    file = KNOWN_WEIGHTS["lpips-alexnet"]
    full = WeightFile(key="full", title="Full", filename="full.pth", url="https://example.invalid/full.pth",
                      sha256="d31a30dddae749a0575619d18490ea252c0fd7f02ab43c9d7d64c55d56e7ca78", needed_by=file.needed_by)
    monkeypatch.setitem(KNOWN_WEIGHTS, "full", full)
    with pytest.raises(Unavailable, match="sha256 mismatch"):
        WeightStore(allow_download=True).path("full")
    assert not (hub_dir / "full.pth").exists()


def test_load_refuses_files_that_are_not_state_dicts(tmp_path, hub_dir, monkeypatch):
    data = b"\x00 definitely not a checkpoint"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    file = WeightFile(key="junk", title="Junk", filename=f"junk-{prefix}.pth", url="https://example.invalid/junk",
                      sha256=prefix, needed_by=())
    monkeypatch.setitem(KNOWN_WEIGHTS, "junk", file)
    (tmp_path / file.filename).write_bytes(data)
    with pytest.raises(BenchError, match="cannot load"):
        WeightStore(tmp_path).load("junk")


def test_bench_weights_lists_found_and_missing(run_cli, shared_weights_dir, hub_dir):
    code, out, _ = run_cli("weights", "--weights-dir", shared_weights_dir, "--json")
    assert code == 0
    rows = {row["key"]: row for row in json.loads(out)}
    assert set(rows) == {"lpips-alexnet", "fid-inception", "resnet18-imagenet"}
    lpips_row = rows["lpips-alexnet"]
    assert lpips_row["status"] == "found" and lpips_row["source"] == "weights dir"
    assert lpips_row["path"] == str(shared_weights_dir / "alexnet-features-lpips.pth")
    assert lpips_row["needed_by"] == ["metric lpips", "metric fd-alex", "metric kd-alex"]
    fid_row = rows["fid-inception"]
    assert fid_row["status"] == "missing" and fid_row["put_at"] == str(shared_weights_dir)
    assert fid_row["needed_by"] == ["metric fid", "metric kid"] and fid_row["file"] == "pt_inception-2015-12-05-6726825d.pth"
    assert rows["resnet18-imagenet"]["status"] == "missing"

    code, out, _ = run_cli("weights", "--weights-dir", shared_weights_dir)
    assert code == 0 and "MISSING — put pt_inception-2015-12-05-6726825d.pth at" in out
    assert "needed by: metric fid, metric kid" in out


def test_bench_weights_rejects_a_missing_folder(run_cli, tmp_path):
    code, _, err = run_cli("weights", "--weights-dir", tmp_path / "nope")
    assert code == 2 and "does not exist" in err
