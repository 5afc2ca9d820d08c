"""The one compiled part: the scanner of policed index records (proxy/_scan.pyx, issue 14).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be built
the install still succeeds and the proxy runs the pure-Python path, saying so at start
(`--native require` refuses to start instead). The wheel also carries the bundled policies and the
demo settings (proxy/_bundled), which the editable install reads from the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


BUNDLE = {"policies": "policies", "deploy/demo-settings.yaml": "demo-settings.yaml"}
"""What the wheel carries beside the code, from the checkout into proxy/_bundled (tests/test_deploy.py reads it)."""


class BuildWithBundle(build_py):
    """Copy the BUNDLE into the built package as proxy/_bundled."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "proxy" / "_bundled"
        for source, name in BUNDLE.items():
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target / name, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target / name)


extensions = cythonize(
    [Extension("proxy._scan", ["proxy/_scan.pyx"], optional=True, extra_compile_args=["-O2"])],
    compiler_directives={"language_level": "3"},
)

setup(ext_modules=extensions, cmdclass={"build_py": BuildWithBundle})
