"""The public door: a rename of a public name is a decision, not an accident."""

import inspect
import subprocess
import sys

import epochscope

PUBLIC = [
    "EpochscopeError", "LayerInfo", "Manifest", "Maps", "MissingDependencyError", "NotARunError", "OutputError",
    "OutputPathError", "RecordSettings", "Reduction",
    "Run", "RunError", "RunLockedError", "RunWriter", "SCHEMA_VERSION", "StorageError", "__version__", "check_run", "embed",
    "encode_labels", "import_chainer", "import_checkpoints", "load_dataset", "network_animation", "open_run",
    "render", "report", "show_report", "stratified_probe",
    # The pictures as Display objects (from_run(...), plot(ax=None), shown inline in a notebook).
    "ConfusionDisplay", "CurvesDisplay", "ForgettingDisplay", "LayerEpochGrid", "MapDisplay", "NetworkDisplay",
    "QualityDisplay", "SamplesDisplay", "Timelapse", "TrainTestMapDisplay",
]
DISPLAYS = ["ConfusionDisplay", "CurvesDisplay", "ForgettingDisplay", "LayerEpochGrid", "MapDisplay",
            "NetworkDisplay", "QualityDisplay", "SamplesDisplay", "Timelapse", "TrainTestMapDisplay"]


def test_public_names_are_pinned():
    assert sorted(epochscope.__all__) == sorted(PUBLIC)


def test_every_public_name_resolves_and_is_documented():
    for name in PUBLIC:
        obj = getattr(epochscope, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


def test_every_public_method_and_property_is_documented():
    undocumented = []
    for name in PUBLIC:
        cls = getattr(epochscope, name)
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        for attr, value in vars(cls).items():
            if attr.startswith("_"):
                continue
            target = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
            if (isinstance(value, property) or inspect.isfunction(target)) and not inspect.getdoc(target):
                undocumented.append(f"{name}.{attr}")
    assert undocumented == []


def test_every_display_has_from_run_plot_and_an_inline_picture():
    for name in DISPLAYS:
        cls = getattr(epochscope, name)
        assert callable(getattr(cls, "from_run", None)), name
        assert "ax" in inspect.signature(cls.plot).parameters, name
        assert callable(getattr(cls, "_repr_png_", None)), name


def test_render_and_report_are_the_pipelines():
    from epochscope import pipeline

    assert epochscope.render is pipeline.render and epochscope.report is pipeline.report


def test_import_is_light():
    code = ("import sys, epochscope; heavy = [m for m in ('torch', 'keras', 'umap', 'numba', 'matplotlib', "
            "'lightning', 'pynndescent', 'sklearn', 'scipy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_is_an_attribute_error():
    try:
        epochscope.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")
