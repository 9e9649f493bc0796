"""``epochscope embed`` on a small synthetic run (PCA, so no numba)."""

import pytest

from epochscope.cli import main
from epochscope.cli.embed import parse_epochs


def test_embed_prints_a_quality_row_per_epoch_and_caches(synthetic_run, capsys):
    assert main(["-q", "embed", str(synthetic_run), "--layer", "hidden", "--method", "pca"]) == 0
    out = capsys.readouterr().out
    assert "pca maps of layer 'hidden': 5 epochs, 120 probe + 30 test points, computed" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r.split()[0]) for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0].split()[2] == "-"  # no motion for the first epoch
    assert 0.5 < float(rows[-1].split()[1]) <= 1.0
    assert main(["-q", "embed", str(synthetic_run), "--method", "pca"]) == 0
    assert "read from the cache" in capsys.readouterr().out


def test_embed_epochs_and_no_cache(synthetic_run, capsys):
    assert main(["-q", "embed", str(synthetic_run), "--method", "pca", "--epochs", "1,3-4", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "3 epochs" in out and "computed" in out


def test_embed_errors_are_one_line(synthetic_run, capsys):
    assert main(["-q", "embed", str(synthetic_run), "--layer", "hiden", "--method", "pca"]) == 2
    assert "did you mean 'hidden'" in capsys.readouterr().err
    assert main(["-q", "embed", str(synthetic_run), "--method", "pca", "--epochs", "x"]) == 2  # the user's input: exit status 2
    assert "--epochs" in capsys.readouterr().err


def test_parse_epochs():
    assert parse_epochs(None) is None
    assert parse_epochs("0, 2,5-7") == [0, 2, 5, 6, 7]
    with pytest.raises(ValueError):
        parse_epochs(",")
