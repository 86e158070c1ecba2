"""Checkpoints written and verified on a dask.distributed cluster (fastinit.cluster).

One LocalCluster of two worker processes serves the whole module: the files it writes
must be byte-identical to the single-process writer's and pass verify; a failing task,
or a worker with another fastinit version, must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastinit
import pytest
from fastinit import checkpoint, cli, specs
from fastinit.specs import ModelSpec, TensorSpec

distributed = pytest.importorskip("distributed")

HIDDEN = re.compile(r"\..*\.fastinit-\d+(?:-\d+)?\.(tmp|new|staging|old)")


def sharded_spec() -> ModelSpec:
    """About 370 kB of float32 and bfloat16: four shards under a 120 kB limit."""
    return ModelSpec(
        11,
        (
            TensorSpec("embed.weight", (400, 96), "bfloat16", "normal", {"std": 0.02}, (0, 3)),
            TensorSpec("q.weight", (256, 96), "float32", "glorot_uniform", {}),
            TensorSpec("k.weight", (256, 96), "float32", "he_normal", {}),
            TensorSpec("mlp.weight", (512, 96), "bfloat16", "truncated_normal", {"std": 0.5}),
            TensorSpec("norm.weight", (96,), "float32", "ones", {}),
            TensorSpec("out.bias", (96,), "bfloat16", "zeros", {}),
        ),
        {"model_type": "test", "hidden_size": 96},
    )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            timeout=60,
        ) as cluster,
        # Not the default client: the code must use the one it is given.
        distributed.Client(cluster, timeout=60, set_as_default=False) as connected,
    ):
        connected.wait_for_workers(2, timeout=60)
        yield connected


def digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def everything_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def test_an_array_computed_on_the_cluster_equals_the_single_call(client):
    future = client.submit(fastinit.glorot_normal, (300, 70), 5, dtype="bfloat16", pure=False)
    got = future.result(timeout=60)
    expected = fastinit.glorot_normal((300, 70), 5, dtype="bfloat16")
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_dask_array_of_a_virtual_tensor_computed_on_the_cluster_equals_the_single_call(
    client, dtype
):
    da = pytest.importorskip("dask.array")
    from fastinit.virtual import VirtualTensor

    lazy = VirtualTensor("he_normal", (257, 96), 8, stream="w", dtype=dtype)
    array = da.from_array(lazy, chunks=(50, 40), asarray=False)
    got = client.compute(array).result(timeout=60)
    expected = fastinit.he_normal((257, 96), 8, stream="w", dtype=dtype)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    part = client.compute(array[100:180:3, 7:90]).result(timeout=60)
    assert part.tobytes() == expected[100:180:3, 7:90].tobytes()


def test_a_sharded_checkpoint_is_byte_identical_and_verifies(client, tmp_path, monkeypatch):
    spec = sharded_spec()
    local = checkpoint.write(spec, tmp_path / "local", max_shard_size="120kB")
    assert len(local.files) == 4 and local.index is not None
    told: list[int] = []  # the client's progress bar: each file's bytes as its task ends
    monkeypatch.setattr(checkpoint.Progress, "advance", lambda self, n: told.append(n))
    result = checkpoint.write(spec, tmp_path / "cluster", max_shard_size="120kB", client=client)
    assert sorted(told) == sorted(path.stat().st_size for path in local.files)
    assert [p.name for p in result.files] == [p.name for p in local.files]
    assert result.bytes == local.bytes
    assert digests(tmp_path / "cluster") == digests(tmp_path / "local")
    assert sorted(os.listdir(tmp_path)) == ["cluster", "local"]  # no staging directory left
    on_cluster = checkpoint.verify(tmp_path / "cluster", client=client)
    assert on_cluster == checkpoint.verify(tmp_path / "cluster")
    assert on_cluster.mismatched == [] and on_cluster.checked_bytes > 0
    sampled = checkpoint.verify(tmp_path / "cluster", sample=5, sample_seed=3, window=4096)
    assert sampled == checkpoint.verify(
        tmp_path / "cluster", sample=5, sample_seed=3, window=4096, client=client
    )


def test_verify_on_the_cluster_names_a_flipped_byte(client, tmp_path):
    checkpoint.write(sharded_spec(), tmp_path, max_shard_size="120kB")
    victim = tmp_path / "model-00002-of-00004.safetensors"
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0x10
    victim.write_bytes(bytes(data))
    found = checkpoint.verify(tmp_path, client=client, window=4096)
    assert found == checkpoint.verify(tmp_path, window=4096)
    assert len(found.mismatched) == 1 and found.mismatched[0].startswith(victim.name)


def _fail_when_generated(shard: str) -> None:
    """Run on every worker: the step after `shard` is generated raises."""
    from fastinit import _signals

    def hook(name: str, path: Path | None) -> None:
        if name == "generated" and path is not None and path.name == shard:
            raise OSError(5, f"injected failure after generating {shard}")

    _signals.step_hook = hook


def _no_hook() -> None:
    from fastinit import _signals

    _signals.step_hook = None


def test_a_failing_task_leaves_no_index_and_no_file(client, tmp_path):
    out = tmp_path / "out"
    client.run(_fail_when_generated, "model-00003-of-00004.safetensors")
    try:
        with pytest.raises(OSError, match="injected failure"):
            checkpoint.write(sharded_spec(), out, max_shard_size="120kB", client=client)
    finally:
        client.run(_no_hook)
    assert everything_under(tmp_path) == []  # no target, no staging, no temporary


def test_a_failing_task_keeps_the_old_checkpoint(client, tmp_path):
    spec = sharded_spec()
    checkpoint.write(spec._replace(seed=1), tmp_path, max_shard_size="120kB")
    before = digests(tmp_path)
    client.run(_fail_when_generated, "model-00001-of-00004.safetensors")
    try:
        with pytest.raises(OSError, match="injected failure"):
            checkpoint.write(spec, tmp_path, max_shard_size="120kB", force=True, client=client)
    finally:
        client.run(_no_hook)
    assert digests(tmp_path) == before
    assert not [p for p in tmp_path.parent.iterdir() if HIDDEN.fullmatch(p.name)]


def _fail_one_while_the_others_run(shard: str) -> None:
    """Run on every worker: `shard` fails once generated; every other shard waits there
    long enough for the client to have removed the marker before it links."""
    import time

    from fastinit import _signals

    def hook(name: str, path: Path | None) -> None:
        if name == "generated" and path is not None:
            if path.name == shard:
                raise OSError(5, f"injected failure after generating {shard}")
            time.sleep(1.0)

    _signals.step_hook = hook


def test_tasks_still_running_when_one_fails_stop_and_leave_nothing(client, tmp_path):
    client.run(_fail_one_while_the_others_run, "model-00001-of-00004.safetensors")
    try:
        with pytest.raises(OSError, match="injected failure"):  # the cause, not Aborted
            checkpoint.write(
                sharded_spec(), tmp_path / "out", max_shard_size="120kB", client=client
            )
    finally:
        client.run(_no_hook)
    assert everything_under(tmp_path) == []


def test_ctrl_c_on_the_client_while_tasks_run_leaves_nothing(client, tmp_path, monkeypatch):
    def interrupted(self: Any, nbytes: int) -> None:  # as the first file is reported
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.Progress, "advance", interrupted)
    client.run(_fail_one_while_the_others_run, "none")  # every task lingers 1 s
    try:
        with pytest.raises(KeyboardInterrupt):
            checkpoint.write(
                sharded_spec(), tmp_path / "out", max_shard_size="120kB", client=client
            )
    finally:
        client.run(_no_hook)
    assert everything_under(tmp_path) == []


def _without_tmpfile() -> None:
    """Run on every worker: named temporaries in the staging directory, as on NFS."""
    os.__dict__["_saved_O_TMPFILE"] = os.__dict__.pop("O_TMPFILE", None)


def _has_tmpfile() -> bool:
    return hasattr(os, "O_TMPFILE")


def _with_tmpfile() -> None:
    saved = os.__dict__.pop("_saved_O_TMPFILE", None)
    if saved is not None:
        os.O_TMPFILE = saved


def test_named_temporaries_where_there_is_no_o_tmpfile(client, tmp_path):
    spec = sharded_spec()
    checkpoint.write(spec, tmp_path / "local", max_shard_size="120kB")
    client.run(_without_tmpfile)
    try:
        assert not any(client.run(_has_tmpfile).values())
        checkpoint.write(spec, tmp_path / "cluster", max_shard_size="120kB", client=client)
        client.run(_fail_when_generated, "model-00004-of-00004.safetensors")
        with pytest.raises(OSError, match="injected failure"):
            checkpoint.write(spec, tmp_path / "failed", max_shard_size="120kB", client=client)
    finally:
        client.run(_no_hook)
        client.run(_with_tmpfile)
    assert digests(tmp_path / "cluster") == digests(tmp_path / "local")
    assert sorted(os.listdir(tmp_path)) == ["cluster", "local"]


def _pretend_version(version: str) -> None:
    fastinit.__version__ = version


def test_a_worker_with_another_version_is_refused_before_anything_is_written(client, tmp_path):
    checkpoint.write(sharded_spec(), tmp_path / "old", max_shard_size="120kB")
    before = everything_under(tmp_path)
    worker = sorted(client.scheduler_info()["workers"])[0]
    client.run(_pretend_version, "0.0.0+other", workers=[worker])
    refused = r"client: worker .* runs fastinit 0\.0\.0\+other, this process"
    try:
        with pytest.raises(ValueError, match=refused):
            checkpoint.write(sharded_spec(), tmp_path / "new", client=client)
        with pytest.raises(ValueError, match=refused):
            checkpoint.write(sharded_spec(), tmp_path / "old", force=True, client=client)
        with pytest.raises(ValueError, match=refused):
            checkpoint.verify(tmp_path / "old", client=client)
    finally:
        client.run(_pretend_version, fastinit.__version__, workers=[worker])
    assert everything_under(tmp_path) == before  # no staging directory, no new file


def _blind() -> None:
    """Run on one worker: it reads the marker file as if on another file system."""
    from fastinit import cluster

    cluster.__dict__.setdefault("_real_read_marker", cluster._read_marker)
    cluster._read_marker = lambda marker: None


def _sighted() -> None:
    from fastinit import cluster

    cluster._read_marker = cluster.__dict__.pop("_real_read_marker")


def test_a_worker_that_cannot_see_the_output_is_refused(client, tmp_path):
    worker = sorted(client.scheduler_info()["workers"])[1]
    client.run(_blind, workers=[worker])
    try:
        with pytest.raises(ValueError, match=rf"output: worker {worker} cannot see .*shared"):
            checkpoint.write(sharded_spec(), tmp_path / "out", client=client)
    finally:
        client.run(_sighted, workers=[worker])
    assert everything_under(tmp_path) == []


def test_bad_clients_are_refused_before_anything_is_written(client, tmp_path):
    with pytest.raises(TypeError, match="client must be a dask.distributed Client"):
        checkpoint.write(sharded_spec(), tmp_path / "out", client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match=r"output .*one \.safetensors file"):
        checkpoint.write(sharded_spec(), tmp_path / "model.safetensors", client=client)
    assert everything_under(tmp_path) == []


def test_cli_init_and_verify_with_a_scheduler(client, tmp_path, capsys):
    address = client.scheduler.address
    argv = ["--spec", str(tmp_path / "spec.json"), "--max-shard-size", "120kB"]
    (tmp_path / "spec.json").write_text(_spec_json(sharded_spec()))
    assert cli.main(["init", *argv, "-o", str(tmp_path / "c"), "--scheduler", address]) == 0
    assert cli.main(["init", *argv, "-o", str(tmp_path / "l")]) == 0
    assert digests(tmp_path / "c") == digests(tmp_path / "l")
    assert cli.main(["verify", str(tmp_path / "c"), "--scheduler", address]) == 0
    assert "OK" in capsys.readouterr().out


def _spec_json(spec: ModelSpec) -> str:
    return json.dumps(specs.spec_to_json(spec))
