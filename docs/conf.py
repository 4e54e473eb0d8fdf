"""Sphinx configuration of the simdsoftmax documentation (tools/build_docs.sh).

The API reference is generated from the docstrings of the *installed*
package (the C++ extension cannot be imported from the source tree), so the
package has to be installed in the Python that runs Sphinx.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.nodes import nested_parse_with_titles

import simdsoftmax

project = "simdsoftmax"
author = "the simdsoftmax developers"
copyright = "the simdsoftmax developers"
release = simdsoftmax.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# `name` in a docstring links to that object when it exists (else plain code).
default_role = "py:obj"

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Docstring checks that fail the build (with -W): a public name without a
# docstring or summary, a parameter missing from "Parameters" or documented
# but not taken, parameters out of order, an undescribed return value,
# sections out of numpydoc's order.
numpydoc_validation_checks = {"GL08", "SS01", "PR01", "PR02", "PR03", "RT03", "GL07"}

html_theme = "furo"
html_title = f"simdsoftmax {release}"
html_static_path: list[str] = []

# ---------------------------------------------------------------------------
# Every public name documented: `.. public-api-rest:: module` documents the
# names of module.__all__ that the page has not documented yet, so a name
# added to __all__ appears in the reference (under "Other") until someone
# files it into its section.

_AUTODOC = re.compile(r"(?:\.\.\s+|\{)auto(?:function|class|data)(?:::|\})\s*([\w.]+)")


class PublicApiRest(Directive):
    required_arguments = 1
    has_content = False
    option_spec = {"heading": directives.unchanged}

    def run(self):
        env = self.state.document.settings.env
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        source = Path(env.doc2path(env.docname)).read_text(encoding="utf-8")
        documented = set(_AUTODOC.findall(source))
        rest = [
            name
            for name in getattr(module, "__all__", [])
            if not name.startswith("_") and f"{module_name}.{name}" not in documented
        ]
        if not rest:
            return []
        logging.getLogger(__name__).info(
            "API reference: %s not filed in a section of %s", ", ".join(rest), env.docname
        )
        heading = self.options.get("heading", "Other")
        lines = [heading, "-" * len(heading), ""]
        for name in rest:
            directive = "autofunction" if callable(getattr(module, name)) else "autodata"
            lines += [f".. {directive}:: {module_name}.{name}", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=env.docname), container)
        return container.children


def setup(app):
    app.add_directive("public-api-rest", PublicApiRest)
