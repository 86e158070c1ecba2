"""The `fastinit` command: its default job checks a sample against the formula."""

import pytest
from fastinit import cli


@pytest.mark.parametrize("init", ["glorot_normal", "he_uniform", "lecun_normal"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sample_passes_its_own_check(capsys, init, dtype):
    code = cli.main(["sample", "--init", init, "--shape", "256", "64", "3", "3", "--dtype", dtype])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "check: PASS" in out
    assert "fastinit / numpy speed:" in out


def test_no_subcommand_means_sample(capsys):
    assert cli.main(["--shape", "128", "128", "--repeat", "1"]) == 0
    assert "glorot_normal[128, 128]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--shape", "0", "5"], "no elements"),
        (["sample", "--shape", "7"], "at least 2 axes"),
        (["sample", "--dtype", "int8"], "dtype must be one of"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_version_has_one_source(capsys):
    """pyproject.toml's version is the package's, the CLI's and the checkpoint header's:
    no second literal to forget when it changes."""
    tomllib = pytest.importorskip("tomllib")
    import pathlib

    import fastinit
    from fastinit import _format, specs

    pyproject = pathlib.Path(__file__).parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert fastinit.__version__ == declared
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastinit {declared}"
    spec = specs.ModelSpec(0, (specs.TensorSpec("w", (2,), "float32", "normal", {}),))
    assert _format.metadata_of(spec)["fastinit.version"] == declared
    source = pathlib.Path(fastinit.__file__).parent
    literal = f'"{declared}"'
    assert [p.name for p in source.glob("*.py") if literal in p.read_text(encoding="utf-8")] == []
