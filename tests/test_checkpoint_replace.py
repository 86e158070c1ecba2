"""Replacing a checkpoint is all-or-nothing (issue 11, C1-C4).

At every step of a write and its commit (the test hook `_signals.step_hook` names each),
an injected exception, and a SIGKILL of a writer process, leave the output holding the
complete old checkpoint or the complete new one: the same files with the same bytes as
a known-good run, the user's files intact, `verify` passing. After an exception nothing
else is left; after a SIGKILL only the dead writer's hidden leftovers, which the next
write removes and reports. Both ways of writing files are covered (unnamed O_TMPFILE
files and named ones), and both ways of swapping directories (renameat2 with
RENAME_EXCHANGE, and rename aside + rename in where EXCHANGE is unsupported).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import NamedTuple

import pytest
from _shared import needs_linux
from fastinit import _durable, _leftovers, _signals, checkpoint, cli, specs
from fastinit.specs import ModelSpec, TensorSpec

pytestmark = needs_linux("O_TMPFILE, renameat2 and /proc are Linux's")
LEFTOVER = _leftovers.LEFTOVER
COMMIT_STEPS = ("renamed", "exchanged", "renamed-in")  # the step at which the new one is in
CHECKPOINT = re.compile(r"(.*/)?(model.*\.safetensors(\.index\.json)?|config\.json)")


def tiny_spec(seed: int) -> ModelSpec:
    """Three 1 KiB weights and a bias: three shards at a 1200-byte limit, else one file."""
    weights = tuple(TensorSpec(f"w{i}", (16, 16), "float32", "normal", {}) for i in range(3))
    bias = TensorSpec("b", (16,), "float32", "zeros", {})
    return ModelSpec(seed, (*weights, bias), {"model_type": "toy"})


class Scenario(NamedTuple):
    target: str
    old_shard: str | None  # "none": no old checkpoint; None: one file; else the shard limit
    new_shard: str | None


SHARDS = "1200B"
SCENARIOS = {
    "new-directory": Scenario("out", "none", SHARDS),
    "single-to-sharded": Scenario("out", None, SHARDS),  # C1, C2
    "sharded-to-single": Scenario("out", SHARDS, None),
    "file": Scenario("x.safetensors", None, None),
}
# Every scenario with renameat2(RENAME_EXCHANGE); the replaced directories also without it.
CASES = [(name, True) for name in SCENARIOS] + [
    ("single-to-sharded", False),
    ("sharded-to-single", False),
]
TEMPLATES: dict[Scenario, Path] = {}  # each scenario's old state, once built

CASE_IDS = [f"{name}-{'exchange' if exchange else 'aside'}" for name, exchange in CASES]


def prepare(work: Path, scenario: Scenario) -> None:
    """The old state: a user's file beside the output and, in an old checkpoint
    directory, the user's notes, a symlink and a read-only subdirectory (copied from the
    references' old state once that is built: a copy is faster than a write)."""
    if scenario in TEMPLATES:
        shutil.copytree(TEMPLATES[scenario], work, symlinks=True)
        return
    work.mkdir()
    (work / "other.txt").write_text("beside the output\n", encoding="utf-8")
    if scenario.old_shard == "none":
        return
    target = work / scenario.target
    checkpoint.write(tiny_spec(1), target, max_shard_size=scenario.old_shard, progress=False)
    if target.is_dir():
        (target / "notes.txt").write_text("mine\n", encoding="utf-8")
        os.symlink("notes.txt", target / "notes.link")
        (target / "tokenizer").mkdir()
        (target / "tokenizer" / "vocab.json").write_text('{"a": 1}\n', encoding="utf-8")
        os.chmod(target / "tokenizer", 0o555)


def write_new(work: Path, scenario: Scenario, force: bool | None = None) -> checkpoint.WriteResult:
    if force is None:
        force = scenario.old_shard != "none"
    return checkpoint.write(
        tiny_spec(2),
        work / scenario.target,
        max_shard_size=scenario.new_shard,
        force=force,
        progress=False,
    )


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: files with mode and bytes, symlinks, directories with mode."""
    found: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                found[key] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def o_tmpfile_works(directory: Path) -> bool:
    try:
        os.close(os.open(directory, os.O_RDWR | os.O_TMPFILE, 0o600))
    except (AttributeError, OSError):
        return False
    return True


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, dict[str, dict[str, tuple]]]:
    """Each scenario's known-good old and new states, checked independently here: the new
    one holds the new checkpoint's files and the user's, untouched, and nothing else."""
    root = tmp_path_factory.mktemp("references")
    found = {}
    for name, scenario in SCENARIOS.items():
        prepare(root / f"{name}-old", scenario)
        TEMPLATES[scenario] = root / f"{name}-old"
        prepare(root / f"{name}-new", scenario)
        write_new(root / f"{name}-new", scenario)
        old, new = tree(root / f"{name}-old"), tree(root / f"{name}-new")
        target = root / f"{name}-new" / scenario.target
        assert checkpoint.verify(target).mismatched == []
        header = checkpoint.read_header(checkpoint.checkpoint_files(target)[0])[0]
        assert header["__metadata__"]["fastinit.seed"] == "2"
        if scenario.target.endswith(".safetensors"):
            written = {scenario.target}
        else:
            names = [p.name for p in checkpoint.checkpoint_files(target)] + ["config.json"]
            if scenario.new_shard is not None:
                names += [checkpoint.INDEX_FILE]
            written = {scenario.target, *(f"{scenario.target}/{n}" for n in names)}
        users = {k: v for k, v in old.items() if k not in written and not CHECKPOINT.fullmatch(k)}
        assert {k: new[k] for k in new if k not in written} == users
        assert old != new
        found[name] = {"old": old, "new": new}
    return found


@pytest.fixture(params=["o_tmpfile", "named"])
def kind(request, monkeypatch, tmp_path) -> str:
    if request.param == "named":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    elif not o_tmpfile_works(tmp_path):
        pytest.skip("O_TMPFILE does not work here")
    return request.param


def no_exchange(monkeypatch) -> None:
    """renameat2 as on a file system without RENAME_EXCHANGE (NFS, some FUSE)."""
    real = _durable._renameat2

    def renameat2(source, destination, flags):
        if flags == _durable._RENAME_EXCHANGE:
            raise OSError(errno.EINVAL, "RENAME_EXCHANGE is not supported here")
        return real(source, destination, flags)

    monkeypatch.setattr(_durable, "_renameat2", renameat2)


def record_steps(work: Path, scenario: Scenario, monkeypatch) -> list[str]:
    steps: list[str] = []
    prepare(work, scenario)
    monkeypatch.setattr(_signals, "step_hook", lambda name, path: steps.append(name))
    write_new(work, scenario)
    monkeypatch.setattr(_signals, "step_hook", None)
    return steps


def injection_points(steps: list[str], exchange: bool = True) -> list[int]:
    """Every step, but only the first and last of a run of one step (one per file); without
    EXCHANGE only the commit's steps (the files are written as with it)."""
    first = 0 if exchange else steps.index("staging-fsynced")
    return [
        k
        for k, name in enumerate(steps)
        if k >= first and (k in (0, len(steps) - 1) or steps[k - 1] != name or steps[k + 1] != name)
    ]


def check_old_or_new(
    work: Path, scenario: Scenario, known: dict, expected: str, writer: int | None = None
) -> list[str]:
    """The invariant: the output is exactly the old or the new checkpoint, with the
    user's files. Returns the hidden leftovers, which only a killed `writer` may leave."""
    state = tree(work)
    strays = sorted(k for k in state if "/" not in k and LEFTOVER.fullmatch(k))
    if writer is None:
        assert strays == [], "an exception must leave nothing behind"
    for name in strays:
        assert int(LEFTOVER.fullmatch(name)["pid"]) == writer, name
    state = {k: v for k, v in state.items() if k.split("/")[0] not in strays}
    matches = [which for which in ("old", "new") if state == known[which]]
    assert matches == [expected], f"neither the {expected} checkpoint nor the other: {state.keys()}"
    target = work / scenario.target
    if os.path.lexists(target):
        assert checkpoint.verify(target).mismatched == []
    return strays


class Injected(RuntimeError):
    pass


def raise_at(index: int, check=None):
    """A step hook that raises at step `index`, first calling check(step) if given."""
    calls = []

    def hook(name, path):
        calls.append(name)
        if len(calls) == index + 1:
            if check is not None:
                check(name)
            raise Injected(name)

    return hook


# ---------------------------------------------------------------------------
# An exception at every step


@pytest.mark.parametrize(("name", "exchange"), CASES, ids=CASE_IDS)
def test_an_exception_at_any_step_keeps_old_or_new(
    tmp_path, monkeypatch, references, kind, name, exchange
):
    """The invariant is checked at the step itself (the writer's own hidden files aside),
    then after the exception: the old checkpoint before the commit point, the new one
    from it on, and nothing else left in either case."""
    scenario = SCENARIOS[name]
    if not exchange:
        no_exchange(monkeypatch)
    steps = record_steps(tmp_path / "steps", scenario, monkeypatch)
    commit = next(k for k, step in enumerate(steps) if step in COMMIT_STEPS)
    assert ("aside" in steps) == (not exchange)
    assert exchange or {"carried", "aside", "renamed-in", "old-moved", "removing-old"} <= set(steps)
    tried = set()
    for k in injection_points(steps, exchange):
        work = tmp_path / f"at-{k}"
        prepare(work, scenario)
        expected = "new" if k >= commit else "old"

        def while_writing(step, work=work, expected=expected):  # the invariant, at this instant
            if step != "aside":  # without EXCHANGE: the one moment without a target
                check_old_or_new(work, scenario, references[name], expected, os.getpid())

        monkeypatch.setattr(_signals, "step_hook", raise_at(k, while_writing))
        with pytest.raises(Injected, match=steps[k]):
            write_new(work, scenario)
        monkeypatch.setattr(_signals, "step_hook", None)
        check_old_or_new(work, scenario, references[name], expected)
        tried.add(steps[k])
    assert tried == set(steps[0 if exchange else steps.index("staging-fsynced") :])


# ---------------------------------------------------------------------------
# SIGKILL (and SIGTERM) of a writer at every step

ZYGOTE = textwrap.dedent(
    """
    import errno, json, os, signal, sys, traceback
    from fastinit import _durable, _leftovers, _signals, checkpoint, cli, specs

    def child(job, report):
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if job["named"]:
            del os.O_TMPFILE
        if not job["exchange"]:
            real = _durable._renameat2
            def renameat2(source, destination, flags):
                if flags == _durable._RENAME_EXCHANGE:
                    raise OSError(errno.EINVAL, "no RENAME_EXCHANGE here")
                return real(source, destination, flags)
            _durable._renameat2 = renameat2
        calls = []
        def hook(name, path):
            calls.append(name)
            if len(calls) == job["at"] + 1:
                os.write(report, name.encode())
                os.kill(os.getpid(), getattr(signal, job["signal"]))
        _signals.step_hook = hook
        if "argv" in job:
            return cli.main(job["argv"])
        spec = specs.spec_from_json(job["spec"])
        checkpoint.write(spec, job["target"], max_shard_size=job["shard"], force=job["force"])
        return 0

    # Forks one writer per job: a fresh process each, without paying for the imports.
    for line in sys.stdin:
        job = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                code = child(job, write_end)
            except BaseException:
                traceback.print_exc()
                code = 99
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            step = pipe.read().decode()
        reply = {
            "pid": pid, "step": step,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        }
        print(json.dumps(reply), flush=True)
    """
)


class Zygote:
    """A Python process that forks a writer per job and reports how it ended."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, job: dict, log: Path) -> dict:
        job = {"named": False, "exchange": True, **job, "log": str(log)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        assert ready, f"the writer never ended: {log.read_text() if log.exists() else ''}"
        reply = json.loads(self.process.stdout.readline())
        reply["log"] = log.read_text(encoding="utf-8")
        return reply

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def zygote():
    process = Zygote()
    yield process
    process.close()


def writer_job(work: Path, scenario: Scenario, at: int, sig: str = "SIGKILL") -> dict:
    return {
        "spec": specs.spec_to_json(tiny_spec(2)),
        "target": str(work / scenario.target),
        "shard": scenario.new_shard,
        "force": scenario.old_shard != "none",
        "at": at,
        "signal": sig,
    }


@pytest.mark.parametrize(("name", "exchange"), CASES, ids=CASE_IDS)
def test_a_killed_writer_keeps_old_or_new_and_the_next_run_tidies(
    tmp_path, monkeypatch, capsys, references, zygote, kind, name, exchange
):
    """C1/C2: killed while the old checkpoint's files are removed, the output held
    nothing, or old files beside new ones that verify accepted; now it is exactly the new
    one. C4: what the dead writer left (its staging directory, a named temporary) is
    removed by the next write, which names it on stderr and in WriteResult.leftovers."""
    scenario = SCENARIOS[name]
    if not exchange:
        no_exchange(monkeypatch)
    steps = record_steps(tmp_path / "steps", scenario, monkeypatch)
    commit = next(k for k, step in enumerate(steps) if step in COMMIT_STEPS)
    tried, reported = set(), 0
    for k in injection_points(steps, exchange):
        work = tmp_path / f"at-{k}"
        prepare(work, scenario)
        job = {**writer_job(work, scenario, k), "exchange": exchange, "named": kind == "named"}
        reply = zygote.run(job, tmp_path / f"log-{k}")
        assert (reply["signal"], reply["step"]) == (signal.SIGKILL, steps[k]), reply["log"]
        target = work / scenario.target
        if steps[k] == "aside":  # no EXCHANGE: killed between rename aside and rename in
            assert not os.path.lexists(target)
            old = f".{scenario.target}.fastinit-{reply['pid']}.old"
            inside = {k[4:]: v for k, v in references[name]["old"].items() if k[:4] == "out/"}
            assert tree(work / old) == inside  # the complete old checkpoint, aside
            with pytest.raises(FileExistsError):  # the old one is renamed back, then kept
                write_new(work, scenario, force=False)
            assert f"renamed {work / old} back to {scenario.target}" in capsys.readouterr().err
            check_old_or_new(work, scenario, references[name], "old")
            tried.add(steps[k])
            continue
        expected = "new" if k >= commit else "old"
        strays = check_old_or_new(work, scenario, references[name], expected, reply["pid"])
        capsys.readouterr()
        result = write_new(work, scenario, force=True)
        err = capsys.readouterr().err
        assert result.leftovers == [work / stray for stray in strays]
        for stray in strays:
            assert f"removed {work / stray}: left by process {reply['pid']}" in err
        reported += len(strays)
        check_old_or_new(work, scenario, references[name], "new")
        tried.add(steps[k])
    assert tried == set(steps[0 if exchange else steps.index("staging-fsynced") :]) and reported > 0


# ---------------------------------------------------------------------------
# The reproducers, as the command line meets them


def spec_file(work: Path) -> Path:
    path = work / "spec.json"
    path.write_text(json.dumps(specs.spec_to_json(tiny_spec(1))), encoding="utf-8")
    return path


def test_c1_sigterm_while_the_old_checkpoint_is_removed(tmp_path, monkeypatch, references, zygote):
    """C1: a SIGTERM while the old checkpoint is removed left `d` empty. Now the new one is
    in place by then: the write finishes, and says it was interrupted after the commit;
    before the commit, the old checkpoint stays and nothing is left."""
    name, scenario = "single-to-sharded", SCENARIOS["single-to-sharded"]
    steps = record_steps(tmp_path / "steps", scenario, monkeypatch)
    for step, expected, message in [
        ("removing-old", "new", "holds the complete new checkpoint"),
        ("linked", "old", "interrupted; no output was left behind"),
    ]:
        work = tmp_path / step
        prepare(work, scenario)
        out = work / scenario.target
        argv = ["init", "--spec", str(spec_file(tmp_path)), "-o", str(out), "--seed", "2"]
        argv += ["--max-shard-size", SHARDS, "--force"]
        job = {**writer_job(work, scenario, steps.index(step), "SIGTERM"), "argv": argv}
        reply = zygote.run(job, tmp_path / f"{step}.log")
        assert (reply["exit"], reply["step"]) == (130, step), reply["log"]
        assert message in reply["log"]
        check_old_or_new(work, scenario, references[name], expected)


def test_c3_a_killed_first_write_does_not_block_the_next(tmp_path, monkeypatch, capsys, zygote):
    """C3: a SIGKILL right after the first file got its name left `model.safetensors`
    without `config.json`, and a rerun without --force refused. Now there is no output
    until it is complete, and the rerun removes the dead writer's staging directory."""
    scenario = SCENARIOS["new-directory"]
    steps = record_steps(tmp_path / "steps", scenario, monkeypatch)
    work = tmp_path / "work"
    prepare(work, scenario)
    reply = zygote.run(writer_job(work, scenario, steps.index("linked")), tmp_path / "log")
    assert reply["signal"] == signal.SIGKILL
    staging = work / f".out.fastinit-{reply['pid']}.staging"
    assert sorted(os.listdir(work)) == [staging.name, "other.txt"]
    argv = ["init", "--spec", str(spec_file(tmp_path)), "-o", str(work / "out"), "--seed", "2"]
    assert cli.main([*argv, "--max-shard-size", SHARDS]) == 0
    err = capsys.readouterr().err
    assert f"fastinit: removed {staging}: left by process {reply['pid']}" in err
    assert sorted(os.listdir(work)) == ["other.txt", "out"]
    assert checkpoint.verify(work / "out").mismatched == []


def test_c4_leftovers_of_dead_writers_go_and_live_ones_stay(tmp_path, capsys):
    """C4: where O_TMPFILE is unavailable a SIGKILL left a hidden temporary in the parent
    that nothing removed. Dead writers' leftovers (no process holds their lock), including
    those of fastinit versions before staging, are removed by the next write and named
    on stderr; a live writer's (locked) ones, and symlinks, are left alone."""
    work = tmp_path / "work"
    prepare(work, SCENARIOS["single-to-sharded"])
    dead = [
        work / ".model.safetensors.fastinit-4000001.tmp",  # C4, from an older fastinit
        work / "out" / ".model.safetensors.fastinit-4000002.new",  # older: inside the output
        work / ".out.fastinit-4000003.staging",
        work / ".x.safetensors.fastinit-4000004-2.tmp",
    ]
    for path in dead[:2] + dead[3:]:
        path.write_bytes(b"\0" * (1 << 20))
    dead[2].mkdir()
    (dead[2] / "model.safetensors").write_bytes(b"partial")
    live_dir = work / f".other.fastinit-{os.getpid()}-7.staging"
    live_dir.mkdir()
    live_file = work / f".y.safetensors.fastinit-{os.getpid()}-7.tmp"
    live_file.write_bytes(b"being written")
    (tmp_path / "precious").write_bytes(b"not a leftover")
    symlink = work / ".z.fastinit-4000005.tmp"
    symlink.symlink_to(tmp_path / "precious")
    holders = [os.open(path, os.O_RDONLY) for path in (live_dir, live_file)]
    try:
        for fd in holders:
            fcntl.flock(fd, fcntl.LOCK_EX)
        result = write_new(work, SCENARIOS["single-to-sharded"])
    finally:
        for fd in holders:
            os.close(fd)
    err = capsys.readouterr().err
    assert sorted(result.leftovers) == sorted(dead)
    for path in dead:
        assert not os.path.lexists(path)
        pid = LEFTOVER.fullmatch(path.name)["pid"]
        assert f"fastinit: removed {path}: left by process {pid}, which did not finish" in err
    assert err.count("fastinit: removed") == len(dead)
    assert live_dir.is_dir() and live_file.read_bytes() == b"being written"
    assert symlink.is_symlink() and (tmp_path / "precious").read_bytes() == b"not a leftover"
    # Once their writer is gone (its locks dropped), the next write removes them.
    result = write_new(work, SCENARIOS["single-to-sharded"])
    assert sorted(result.leftovers) == sorted([live_dir, live_file])
    assert sorted(os.listdir(work)) == [symlink.name, "other.txt", "out"]


# ---------------------------------------------------------------------------
# Concurrent writers, the user's files, outputs that cannot be replaced whole


@pytest.mark.parametrize("force", [False, True], ids=["refused", "forced"])
def test_concurrent_writers_commit_one_after_the_other(tmp_path, monkeypatch, force):
    """Two writers of one output (threads of one process: the same pid in their hidden
    names): the first to commit wins; the second refuses without force, else replaces it
    whole. Neither leaves anything behind."""
    work = tmp_path / "work"
    prepare(work, SCENARIOS["new-directory"])
    out = work / "out"
    paused, resume, failures = threading.Event(), threading.Event(), []

    def hook(name, path):
        if threading.current_thread() is slow and name == "staging-fsynced":
            paused.set()
            assert resume.wait(60)

    def slow_writer():
        try:
            checkpoint.write(tiny_spec(3), out, force=force, progress=False)
        except BaseException as error:
            failures.append(error)

    monkeypatch.setattr(_signals, "step_hook", hook)
    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert paused.wait(60)
    checkpoint.write(tiny_spec(2), out, force=force, progress=False)
    staged = sorted(name for name in os.listdir(work) if LEFTOVER.fullmatch(name))
    assert staged == [f".out.fastinit-{os.getpid()}.staging"]  # the slow one's, alive
    resume.set()
    slow.join(60)
    assert sorted(os.listdir(work)) == ["other.txt", "out"]
    seed = checkpoint.read_header(out / "model.safetensors")[0]["__metadata__"]["fastinit.seed"]
    if force:
        assert failures == [] and seed == "3"
    else:
        assert [type(error) for error in failures] == [FileExistsError] and seed == "2"
        assert "pass force=True" in str(failures[0])
    assert checkpoint.verify(out).mismatched == []


def test_the_users_files_are_linked_not_copied(tmp_path, monkeypatch):
    """Files are hard-linked into the new directory (the same inodes), a subdirectory is
    recreated with its mode; a file added or replaced while the commit runs is carried."""
    work = tmp_path / "work"
    prepare(work, SCENARIOS["sharded-to-single"])
    out = work / "out"
    before = {name: os.lstat(out / name).st_ino for name in ("notes.link", "tokenizer/vocab.json")}

    def hook(name, path):
        if name == "carried":  # the old directory is still `out`: a user writes into it
            (out / "late.txt").write_text("added late\n", encoding="utf-8")
            (work / "notes.new").write_text("edited\n", encoding="utf-8")
            os.replace(work / "notes.new", out / "notes.txt")

    monkeypatch.setattr(_signals, "step_hook", hook)
    write_new(work, SCENARIOS["sharded-to-single"])
    after = {name: os.lstat(out / name).st_ino for name in before}
    assert after == before
    assert stat.S_IMODE(os.lstat(out / "tokenizer").st_mode) == 0o555
    assert os.readlink(out / "notes.link") == "notes.txt"
    assert (out / "late.txt").read_text(encoding="utf-8") == "added late\n"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "edited\n"
    assert sorted(os.listdir(out)) == [
        "config.json",
        "late.txt",
        "model.safetensors",
        "notes.link",
        "notes.txt",
        "tokenizer",
    ]
    assert sorted(os.listdir(work)) == ["other.txt", "out"]


def test_a_file_that_cannot_be_carried_stops_the_write(tmp_path, monkeypatch, references):
    """A user's file that cannot be hard-linked (another file system, protected_hardlinks)
    refuses the write before the commit: the old checkpoint and every file stay."""
    work = tmp_path / "work"
    scenario = SCENARIOS["single-to-sharded"]
    prepare(work, scenario)
    real = os.link

    def link(source, destination, **kwargs):
        if str(source).endswith("vocab.json"):
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real(source, destination, **kwargs)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(PermissionError, match=r"cannot carry .*vocab\.json.*untouched"):
        write_new(work, scenario)
    check_old_or_new(work, scenario, references["single-to-sharded"], "old")


def test_a_symlinked_output_is_replaced_where_it_points(tmp_path):
    work = tmp_path / "work"
    (work / "real").mkdir(parents=True)
    os.symlink("real", work / "out")
    checkpoint.write(tiny_spec(1), work / "out", progress=False)
    checkpoint.write(tiny_spec(2), work / "out", max_shard_size=SHARDS, force=True)
    assert os.readlink(work / "out") == "real" and sorted(os.listdir(work)) == ["out", "real"]
    assert len(checkpoint.checkpoint_files(work / "real")) == 3
    assert checkpoint.verify(work / "out").mismatched == []


def test_outputs_that_cannot_be_replaced_whole_are_refused(tmp_path):
    (tmp_path / "out").write_text("a file", encoding="utf-8")
    (tmp_path / "x.safetensors").mkdir()
    for target, error in [("out", NotADirectoryError), ("x.safetensors", IsADirectoryError)]:
        with pytest.raises(error, match=target):
            checkpoint.write(tiny_spec(1), tmp_path / target, force=True)
    assert sorted(os.listdir(tmp_path)) == ["out", "x.safetensors"]
    assert os.listdir(tmp_path / "x.safetensors") == []


def test_a_signal_while_committing_waits_for_the_commit(tmp_path, monkeypatch, references):
    """SIGINT (Ctrl-C) during the commit: the old checkpoint is removed first, then the
    write raises CommittedInterrupt (a KeyboardInterrupt); before the commit, a plain one."""
    name, scenario = "sharded-to-single", SCENARIOS["sharded-to-single"]
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's KeyboardInterrupt here")
    for step, raised, expected in [
        ("exchanged", _signals.CommittedInterrupt, "new"),
        ("written", KeyboardInterrupt, "old"),
    ]:
        work = tmp_path / step
        prepare(work, scenario)

        def interrupt(name, path, step=step):
            if name == step:
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(_signals, "step_hook", interrupt)
        with pytest.raises(KeyboardInterrupt) as caught:
            write_new(work, scenario)
        assert caught.type is raised
        check_old_or_new(work, scenario, references[name], expected)


def test_a_signal_python_swallowed_still_stops_the_write(tmp_path, monkeypatch, references):
    """Python drops an exception raised in a weakref callback or __del__: a SIGTERM whose
    KeyboardInterrupt was raised there is raised again at the next step (a campaign of
    random SIGTERMs found writes that ignored one and finished)."""
    name, scenario = "single-to-sharded", SCENARIOS["single-to-sharded"]
    work = tmp_path / "work"
    prepare(work, scenario)
    swallowed, later = [], []

    def hook(step, path):
        if swallowed:
            later.append(step)
        elif step == "generated":
            handler = signal.getsignal(signal.SIGTERM)
            try:
                handler(signal.SIGTERM, None)  # as if run inside a weakref callback
            except KeyboardInterrupt as error:
                swallowed.append(error)

    monkeypatch.setattr(_signals, "step_hook", hook)
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
        write_new(work, scenario)
    assert len(swallowed) == 1 and later == []  # stopped at the very next step
    check_old_or_new(work, scenario, references[name], "old")
    monkeypatch.setattr(_signals, "step_hook", None)
    write_new(work, scenario)  # nothing pending is carried into the next write
    check_old_or_new(work, scenario, references[name], "new")
