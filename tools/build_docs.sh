#!/usr/bin/env bash
# Build the documentation site into docs/_build/html with Sphinx, every warning
# an error (a broken link, a docstring numpydoc cannot parse, a public name
# missing from the API reference all fail the build).
#
#   tools/build_docs.sh            # from any directory, in the active Python
#   PYTHON=.venv/bin/python tools/build_docs.sh
#
# The API reference is read from the installed package's docstrings, so
# simdsoftmax must be importable: if it is not, `pip install ".[docs]"` builds
# and installs it from this checkout; if it is but the pinned documentation
# tools (the `docs` extra in pyproject.toml) are missing, only those are
# installed, so an installed build is never rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}

if ! "$py" -c "import simdsoftmax" 2>/dev/null; then
  "$py" -m pip install -q ".[docs]"
else
  # The docs extra as pip requirements, installed when any pin is unmet.
  reqs=$("$py" - <<'EOF'
import importlib.metadata as md
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    extra = tomllib.load(f)["project"]["optional-dependencies"]["docs"]
missing = []
for req in extra:
    name, _, version = re.split(r"(==|>=)", req, maxsplit=1)
    name = re.sub(r"\[.*\]", "", name)
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        missing.append(req)
        continue
    if "==" in req and have != version:
        missing.append(req)
print("\n".join(missing))
EOF
)
  if [ -n "$reqs" ]; then
    printf '%s\n' "$reqs" | "$py" -m pip install -q -r /dev/stdin
  fi
fi

rm -rf docs/_build/html
"$py" -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "docs: docs/_build/html/index.html"
