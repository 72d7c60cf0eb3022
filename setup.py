"""Ship the top-level task and judge definitions inside the package, so non-editable installs have them."""

from setuptools import find_packages, setup

DATA = {"alignbench._builtin.tasks": "tasks", "alignbench._builtin.judges": "judges"}

setup(
    packages=find_packages(include=["alignbench", "alignbench.*"]) + list(DATA),
    package_dir=DATA,
    package_data={**{name: ["**/*"] for name in DATA}, "alignbench.report": ["assets/*"]},
)
