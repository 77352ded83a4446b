#!/usr/bin/env bash
# Build the API reference of nmmfit from its docstrings (pdoc) into docs/api/ (not committed).
#
#   pip install -e ".[docs]"            # pdoc
#   scripts/build_api_docs.sh           # -> docs/api/index.html (open it in a browser)
#   PYTHON=.venv/bin/python scripts/build_api_docs.sh
#
# Every public module (no leading underscore in its dotted name) gets a page; the list is
# walked from the package, because a package's __all__ would otherwise hide its submodules
# from pdoc. Every module is imported to document it, and an import error fails the build.
# Docstrings are numpydoc-style with reST roles (:func:, :class:), hence --docformat numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export MPLBACKEND=Agg  # figure modules import matplotlib; no display is needed
modules=$("$PYTHON" - <<'PY'
import importlib
import pkgutil

from pdoc.extract import walk_specs

import nmmfit


def fail(name):
    raise SystemExit(f"cannot import {name}")


# pdoc walks a package's submodules itself unless the package's __all__ leaves them out; name
# only the modules that no earlier name reaches, so that each is listed once
specs, covered = ["nmmfit"], set(walk_specs(["nmmfit"]))
for m in pkgutil.walk_packages(nmmfit.__path__, "nmmfit.", onerror=fail):
    if any(p.startswith("_") for p in m.name.split(".")):
        continue
    importlib.import_module(m.name)  # an import error stops the build here (pdoc would warn)
    if m.name not in covered:
        specs.append(m.name)
        covered |= set(walk_specs([m.name]))
print(" ".join(specs + [r"!nmmfit(\..*)?\._"]))  # no private modules (plots._common)
PY
)
version=$("$PYTHON" -c 'import nmmfit; print(nmmfit.__version__)')
rm -rf docs/api
# shellcheck disable=SC2086  # the module list is space-separated on purpose
"$PYTHON" -m pdoc --docformat numpy --no-show-source --footer-text "nmmfit $version" \
    -o docs/api $modules "$@"
echo "API reference: docs/api/index.html ($(find docs/api -name '*.html' | wc -l) pages)"
