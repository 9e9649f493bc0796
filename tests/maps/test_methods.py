"""The single list of map methods that the embedder and the command line share."""

import subprocess
import sys

from epochscope.maps.methods import DEFAULT_METHOD, METHOD_NAMES, METHODS


def test_every_listed_method_resolves_to_settings_of_that_name() -> None:
    from epochscope.maps.api import method_settings

    assert METHOD_NAMES == tuple(METHODS) and METHOD_NAMES[0] == DEFAULT_METHOD
    for name in METHOD_NAMES:
        assert type(method_settings(name, {})).name == name


def test_cli_commands_offer_exactly_these_methods() -> None:
    from epochscope.cli import embed, render, report

    for module in (embed, render, report):
        assert module.METHOD_NAMES is METHOD_NAMES


def test_the_method_list_imports_nothing_heavy() -> None:
    code = ("import sys; import epochscope.maps.methods; "
            "print(sorted(m for m in ('umap', 'numba', 'pynndescent', 'openTSNE', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
