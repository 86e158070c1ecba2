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
