"""Packaging: pyproject.toml and environment.yml agree; the layout the course promises exists."""
import re
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# conda names some packages differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    test = {_name(r) for r in project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    assert core <= conda, f"missing from environment.yml: {core - conda}"
    assert test <= conda, f"missing from environment.yml: {test - conda}"
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert "-e ." in pip_section


def test_core_dependencies_are_the_promised_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert core == {"torch", "numpy", "pillow", "matplotlib", "ipywidgets", "tqdm", "h5py", "scikit-image", "scipy"}
    assert "torchvision" not in core
    every = core | {_name(r) for r in project["optional-dependencies"]["test"]}
    assert {"jupyterlab", "ipykernel", "nbval", "pytest"} <= every


def test_every_environment_yml_dependency_is_commented():
    text = (ROOT / "environment.yml").read_text()
    deps = text.split("dependencies:", 1)[1].splitlines()
    packages = [line.strip() for line in deps if line.strip().startswith("- ")]
    for line in packages:
        if line.split()[1] in ("pip", "pip:") or line.startswith("- python"):
            continue  # the interpreter and pip itself need no explanation
        assert "#" in line, f"uncommented dependency: {line}"


def test_layout():
    for path in ["README.md", "pyproject.toml", "environment.yml", ".ci/run", "nstlib", "notebooks",
                 "data/registry.tsv", "tests", "benchmarks"]:
        assert (ROOT / path).exists(), path


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    install = 'pip install -e ".[test]"'
    test = "NSTLIB_QUICK=1 python -m pytest"
    assert install in readme and install in ci
    assert test in readme and test in ci


def test_the_package_docstring_and_the_readme_list_every_module():
    """Issue 17: a new module is added to both maps, so a reader finds it from either."""
    import re

    import nstlib

    modules = sorted(p.stem for p in (ROOT / "nstlib").glob("*.py") if not p.stem.startswith("__"))
    readme = (ROOT / "README.md").read_text()
    assert [m for m in modules if not re.search(rf"\b{m}\b", nstlib.__doc__)] == []
    assert [m for m in modules if f"`nstlib.{m}`" not in readme] == []
