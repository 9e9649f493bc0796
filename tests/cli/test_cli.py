"""The command line: help for every command, info, the demo, clear errors."""

import json
import subprocess
import sys

import pytest

from epochscope.cli import build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"demo", "info", "embed", "render", "network", "report", "serve", "import", "export", "check"}
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: epochscope" in capsys.readouterr().out


HELP_ARGV = [[], ["demo"], ["info"], ["embed"], ["render"], ["network"], ["report"], ["serve"], ["import"],
             ["import", "chainer"], ["import", "checkpoints"], ["export"], ["export", "tensorboard"], ["check"]]


@pytest.mark.parametrize("argv", HELP_ARGV, ids=lambda argv: " ".join(argv) or "epochscope")
def test_help_states_the_exit_statuses(argv, capsys):
    """A script calling epochscope needs to know what each exit status means; ``--help`` is where it looks."""
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "exit status: 0 " in text, text
    if argv == ["check"]:  # check's own statuses: 1 also when problems remain
        assert "1 problems remain" in text and "2 a folder that is not a run" in text
    else:
        assert "1 the environment failed" in text and "2 a mistake in what was given" in text
    # serve runs until Ctrl-C: that is how it ends well
    assert ("0 stopped by Ctrl-C" if argv == ["serve"] else "130 interrupted (Ctrl-C)") in text


@pytest.mark.parametrize("argv, says", [
    (["embed"], "(default: 15 for umap and aligned-umap, 40 for umap-independent"),
    (["report"], "(default: 15 for umap and aligned-umap, 40 for umap-independent"),
    (["embed"], "pca: "), (["embed"], "tsne: "),
    (["render"], "(default: none; confusion.png is the last epoch's)"),
])
def test_help_states_each_default(argv, says, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert says in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv", [["info", "RUN"], ["render", "RUN", "--out", "x"], ["import", "chainer", "d", "--out", "o"],
                                  ["import", "checkpoints", "d", "--out", "o"], ["demo"]])
def test_quiet_and_verbose_work_after_the_command_too(argv):
    """``epochscope render RUN --out x -q`` as the README's "-q silences progress bars" invites."""
    parser = build_parser()
    assert parser.parse_args([*argv, "-q"]).quiet is True
    assert parser.parse_args([*argv, "--verbose"]).verbose is True
    assert parser.parse_args(["-q", *argv]).quiet is True  # given before the command, as before
    plain = parser.parse_args(argv)
    assert plain.quiet is False and plain.verbose is False


def test_info_describes_a_run(synthetic_run, capsys):
    assert main(["info", str(synthetic_run)]) == 0
    out = capsys.readouterr().out
    assert "epochs    0..4 (5 finished)" in out and "hidden" in out and "probe     120 examples, 3 classes" in out
    assert main(["info", str(synthetic_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["epochs"] == [0, 1, 2, 3, 4] and data["layers"][0]["width"] == 16


def test_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2  # the user's input: exit status 2 (1 is for the environment)
    err = capsys.readouterr().err
    assert err.startswith("epochscope info: error:") and "manifest.json is missing" in err and "Traceback" not in err


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "epochscope", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("epochscope ")


def test_demo_trains_and_records_digits(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--dataset", "digits", "--epochs", "2", "--probe-size", "300", "--out", str(out),
                 "--no-pictures"]) == 0
    from epochscope import open_run

    run = open_run(out / "run")
    assert run.epochs == [0, 1, 2] and run.layers == ["hidden"]
    assert run.layer_info("hidden").width == 512 and run.manifest.probe_size == 300 and run.manifest.test_size == 359
    assert run.metrics[-1]["val_accuracy"] > run.metrics[0]["val_accuracy"]


def _readme_command_rows() -> dict[str, str]:
    """The README's command-line table: ``{"render": "epochscope render RUN --out DIR [...]", ...}``
    (``import``'s row names both sources)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `epochscope "):
            usage = re.split(r"(?<!\\)\|", line)[1]  # the first cell; "\|" separates choices inside it
            rows[usage.split()[1]] = usage
    return rows


def _options(parser) -> set[str]:
    """The long options a (sub)command offers, less help and the -q/-v every command has."""
    import argparse

    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _options(child)
        elif action.help is not argparse.SUPPRESS:
            found |= {o for o in action.option_strings if o.startswith("--")}
    return found - {"--help", "--quiet", "--verbose", "--version"}


def test_readme_command_table_lists_every_command_with_the_options_it_has():
    """The README's table is where a new user learns the command line: each command is in it,
    and its options are exactly the ones the command takes (none missing, none invented)."""
    import re

    rows = _readme_command_rows()
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(rows) == set(commands)
    for name, usage in rows.items():
        assert set(re.findall(r"--[a-z][a-z-]*", usage)) == _options(commands[name]), name


def test_embed_prints_what_it_mapped(tmp_path, capsys):
    from synthetic import make_synthetic_run

    run = make_synthetic_run(tmp_path / "run", n_probe=1200, n_test=1000, n_epochs=2)
    assert main(["-q", "embed", str(run), "--method", "pca"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    # both counts written the same way (the test count lacked its thousands separator)
    assert first.startswith("pca maps of layer 'hidden': 2 epochs, 1,200 probe + 1,000 test points, computed in ")
