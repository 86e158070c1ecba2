"""A checkpoint's files written in three steps from any engine (fastinit.parts):
prepare, write_part (here in spawned worker processes), commit or abort."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastinit import _signals, checkpoint
from fastinit.specs import ModelSpec, TensorSpec


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
def pool() -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        yield executor


def digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def everything_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def test_parts_written_in_worker_processes_are_byte_identical_and_verify(pool, tmp_path):
    spec = sharded_spec()
    checkpoint.write(spec, tmp_path / "local", max_shard_size="120kB")
    job = checkpoint.prepare(spec, tmp_path / "parts", max_shard_size="120kB")
    assert len(job.files) == 4 and job.staging.is_dir()
    sizes = list(pool.map(checkpoint.write_part, [job] * len(job.files), range(len(job.files))))
    assert sizes == list(job.sizes)
    checkpoint.commit(job)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local", "parts"]  # no staging left
    assert digests(tmp_path / "parts") == digests(tmp_path / "local")
    assert "config.json" in digests(tmp_path / "parts")
    found = checkpoint.verify(tmp_path / "parts")
    assert found.mismatched == [] and found.checked_bytes > 0
    with pytest.raises(ValueError, match="already committed or aborted; commit it"):
        checkpoint.commit(job)


def test_the_job_pickles_and_replaces_an_old_checkpoint_only_with_force(tmp_path):
    spec = sharded_spec()
    checkpoint.write(spec._replace(seed=1), tmp_path, max_shard_size="120kB")
    with pytest.raises(FileExistsError, match="force=True"):
        checkpoint.prepare(spec, tmp_path, max_shard_size="120kB")
    job = checkpoint.prepare(spec, tmp_path, max_shard_size="120kB", force=True)
    copy = pickle.loads(pickle.dumps(job))
    assert copy == job and copy.marker == job.marker
    for k in range(len(job.files)):
        checkpoint.write_part(copy, k, threads=1)
    checkpoint.commit(job)
    checkpoint.write(spec, tmp_path.parent / "expected", max_shard_size="120kB")
    assert digests(tmp_path) == digests(tmp_path.parent / "expected")


def _fail_when_generated(shard: str) -> None:
    def hook(name: str, path: Path | None) -> None:
        if name == "generated" and path is not None and path.name == shard:
            raise OSError(5, f"injected failure after generating {shard}")

    _signals.step_hook = hook


def test_a_failing_part_then_abort_leaves_nothing(pool, tmp_path, monkeypatch):
    job = checkpoint.prepare(sharded_spec(), tmp_path / "out", max_shard_size="120kB")
    written = list(pool.map(checkpoint.write_part, [job] * 3, range(3)))  # the others are done
    assert written == list(job.sizes[:3])
    monkeypatch.setattr(_signals, "step_hook", None)
    _fail_when_generated(job.files[3])
    try:
        with pytest.raises(OSError, match="injected failure"):
            checkpoint.write_part(job, 3)
    finally:
        _signals.step_hook = None
    checkpoint.abort(job)
    assert everything_under(tmp_path) == []  # no final file, no index, no staging
    checkpoint.abort(job)  # twice is harmless


def test_write_part_after_abort_is_refused_naming_the_marker(pool, tmp_path):
    job = checkpoint.prepare(sharded_spec(), tmp_path / "out", max_shard_size="120kB")
    checkpoint.abort(job)
    with pytest.raises(checkpoint.Aborted, match=r"job for .*out: its marker .* is gone"):
        checkpoint.write_part(job, 0)
    with pytest.raises(checkpoint.Aborted, match="marker"):  # in a worker process too
        pool.submit(checkpoint.write_part, job, 1).result()
    assert issubclass(checkpoint.Aborted, ValueError)
    with pytest.raises(ValueError, match="already committed or aborted"):
        checkpoint.commit(job)
    assert everything_under(tmp_path) == []


def test_commit_before_every_part_is_refused_naming_the_missing_files(tmp_path):
    job = checkpoint.prepare(sharded_spec(), tmp_path / "out", max_shard_size="120kB")
    checkpoint.write_part(job, 1)
    with pytest.raises(ValueError, match=r"job: 3 of 4 files not written yet") as refused:
        checkpoint.commit(job)
    message = str(refused.value)
    assert job.files[0] in message and job.files[2] in message and job.files[3] in message
    assert job.files[1] not in message
    assert not (tmp_path / "out").exists()
    for k in (0, 2, 3):  # the refusal changed nothing: the job goes on
        checkpoint.write_part(job, k)
    checkpoint.commit(job)
    assert checkpoint.verify(tmp_path / "out").mismatched == []


def test_a_job_of_another_version_is_refused_before_anything_is_written(tmp_path):
    job = checkpoint.prepare(sharded_spec(), tmp_path / "out", max_shard_size="120kB")
    other = dataclasses.replace(job, version="0.0.0+other")
    with pytest.raises(ValueError, match=r"job: prepared by fastinit 0\.0\.0\+other, this"):
        checkpoint.write_part(other, 0)
    assert everything_under(job.staging) == [".fastinit-parts-marker"]
    checkpoint.abort(job)
    assert everything_under(tmp_path) == []


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"output .*one \.safetensors file"):
        checkpoint.prepare(sharded_spec(), tmp_path / "model.safetensors")
    with pytest.raises(TypeError, match="force must be a bool"):
        checkpoint.prepare(sharded_spec(), tmp_path / "out", force=1)  # type: ignore[arg-type]
    assert everything_under(tmp_path) == []
    job = checkpoint.prepare(sharded_spec(), tmp_path / "out", max_shard_size="120kB")
    try:
        with pytest.raises(ValueError, match="k must be below the job's 4 files, got 4"):
            checkpoint.write_part(job, 4)
        with pytest.raises(ValueError, match="k"):
            checkpoint.write_part(job, -1)
        with pytest.raises(ValueError, match="threads"):
            checkpoint.write_part(job, 0, threads=0)
        with pytest.raises(TypeError, match="job must be a Job"):
            checkpoint.write_part("job", 0)  # type: ignore[arg-type]
    finally:
        checkpoint.abort(job)
    assert everything_under(tmp_path) == []
