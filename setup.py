"""Package discovery for cascc (the metadata is in pyproject.toml).

passes/ and targets/ live at the top of the repository but install inside cascc, so no generic top-level
`passes` or `targets` module is ever installed. Every subpackage below each root is found, so a new one
cannot be left out of a wheel (a hand-kept list once missed cascc.lower.kernels).
"""

from setuptools import find_packages, setup

ROOTS = {"cascc": "cascc", "cascc.passes": "passes", "cascc.targets": "targets"}


def packages() -> list[str]:
    return [
        name + (f".{sub}" if sub else "")
        for name, root in ROOTS.items()
        for sub in ["", *find_packages(root)]
    ]


setup(package_dir=ROOTS, packages=packages())
