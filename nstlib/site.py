"""The course site: the executed notebooks rendered as HTML pages, the README as the landing page.

    python -m nstlib site [--out build/site]     (needs the [site] extra: pip install -e ".[site]")

What it builds, and from what (Sphinx with MyST-NB and sphinx-book-theme, configured in docs/site/):
* README.md becomes index.html, the landing page with the course table; every committed
  notebooks/NN_*.ipynb becomes a page, in order, with its Colab badge and previous/next links.
* Nothing is executed (MyST-NB's `nb_execution_mode = "off"`): the pages show the outputs stored in
  the notebooks, figures included, exactly as committed.
* The sources are staged in a temporary folder and adapted there, never in the repository:
  - a relative link to a repository file that is not a page (a solution file, LICENSE) points to
    that file on GitHub; a link to a notebook not written yet becomes plain text;
  - Colab's badge image becomes the site's own copy (docs/site/_static/colab-badge.svg), so a page
    loads nothing from another host; the badge still links to Colab;
  - a collapsed answer (<details>) gets blank lines around its body, so that its math and code
    render as they do in Jupyter;
  - a widget cell gets a note that the widgets run in Jupyter or Colab only. The stored notebooks
    keep no widget state: notebooks/clean_metadata.py strips it (its model ids change on every run)
    with the widget outputs that need it, and tests/test_notebooks_stored.py checks that, so no
    static slider can be rendered from them;
  - a hidden table of contents lists the notebooks (the sidebar and the previous/next buttons).
* Math: MathJax 3, copied into the site from the sphinx-mathjax-offline wheel, so formulas render
  offline (no CDN), on a laptop and in CI.
* The output, OUT (default build/site, git-ignored), is static HTML: open OUT/index.html, or serve
  it with `python -m http.server -d build/site`. tests/test_site.py opens every page in headless
  Chromium and checks links, images and math.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent  # the repository (the site is built from a clone)
CONFIG = "docs/site"  # in the repository: conf.py and _static/
DEFAULT_OUT = ROOT / "build" / "site"
INSTALL_HINT = 'the course site needs Sphinx and MyST-NB: pip install -e ".[site]"'
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_FILE = "_static/colab-badge.svg"  # in docs/site
# Where Colab links point: github.com/OWNER/NAME/blob/BRANCH/notebooks/...
_COLAB_LINK = re.compile(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/")
# [text](target): text may hold one level of brackets (a badge's ![alt](img)); not after a word
# character or ']' (Python's `layers[0](x)` is no link), nor an image's '!'
_LINK = re.compile(r"(?<![\w\]!\\])\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\(([^()\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
# A code cell that builds widgets: its widget outputs were stripped from the stored notebook
_WIDGET_CELL = re.compile(r"\bwidgets\.(?:\w+\.)*[A-Z]\w*\(|\b\w*Picker\(")
WIDGET_NOTE = ("```{note}\nIn Jupyter or Colab, the cell above shows interactive widgets. The site is built "
               "from the stored outputs, which keep no widget state, so they are not shown here: open "
               "the notebook (the Colab badge at the top) to use them.\n```")


class SiteError(ValueError):
    """The site cannot be built: a one-line reason (python -m nstlib site prints it)."""


@dataclass
class SiteResult:
    out: Path
    pages: list[str]           # the HTML files written, relative to out
    seconds: float
    warnings: list[str] = field(default_factory=list)   # Sphinx's, one a line
    notes: list[str] = field(default_factory=list)      # what staging changed: unlinked, widget notes

    def summary(self) -> str:
        lines = [f"built {len(self.pages)} pages in {self.seconds:.1f} s: {self.out / 'index.html'}"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The course's notebooks, in order: notebooks/NN_*.ipynb."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def repository(readme: str) -> tuple[str, str]:
    """(owner/name, branch) of the repository on GitHub, read from the README's Colab links."""
    match = _COLAB_LINK.search(readme)
    if match is None:
        raise SiteError("README.md has no Colab link (colab.research.google.com/github/OWNER/NAME/blob/BRANCH/...) "
                        "to say where the repository is")
    return match.group(1), match.group(2)


def rewrite_links(markdown: str, here: str, pages: set[str], root: Path, blob: str) -> tuple[str, list[str]]:
    """`markdown` of the file at repository path `here` ("README.md", "notebooks/03_x.ipynb"), its
    links adapted for the site: a page (a path in `pages`) stays a link, another repository file
    links to `blob` + its path (GitHub), a missing file becomes plain text; Colab's badge image
    becomes the site's copy. Fenced code is left alone. Returns the text and the missing targets."""
    badge = "/" + BADGE_FILE  # MyST: '/' is the root of the site's sources
    missing: list[str] = []

    def link(m: re.Match) -> str:
        text, target = m.group(1), m.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:|#|/", target, re.I):
            return m.group(0)  # a URL, an anchor on this page, a site path
        path, _, fragment = target.partition("#")
        resolved = _normalise(PurePosixPath(here).parent / path)
        if resolved is None:
            return m.group(0)
        if resolved in pages:
            return m.group(0)
        if (root / resolved).exists():
            kind = "tree" if (root / resolved).is_dir() else "blob"
            return f"[{text}]({blob.replace('/blob/', f'/{kind}/')}{resolved}{'#' + fragment if fragment else ''})"
        missing.append(resolved)
        return text

    parts, last = [], 0
    for fence in _FENCE.finditer(markdown):
        parts += [_LINK.sub(link, markdown[last:fence.start()]), fence.group(0)]
        last = fence.end()
    parts.append(_LINK.sub(link, markdown[last:]))
    text = "".join(parts).replace(COLAB_BADGE, badge)
    # A collapsed answer, <details><summary>Answer</summary> ... </details>, is one raw HTML block
    # to MyST (as to CommonMark), so its math and code would stay raw text: blank lines around the
    # body make it Markdown between two bits of HTML (Jupyter typesets math anywhere in a cell).
    text = re.sub(r"(<details>\s*<summary>.*?</summary>)[ \t]*\n?", r"\1\n\n", text)
    return re.sub(r"\n([ \t]*)</details>", r"\n\n\1</details>", text), missing


def _normalise(path: PurePosixPath) -> str | None:
    """'notebooks/../README.md' -> 'README.md'; None if it leaves the repository."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


def stage(dest: Path, root: Path = ROOT) -> list[str]:
    """Write the site's sources into `dest`: docs/site's configuration, index.md (the README) and
    notebooks/ (adapted copies, see the module docstring). Returns notes on what it changed."""
    if not ((root / "README.md").is_file() and (root / CONFIG / "conf.py").is_file()):
        raise SiteError(f"README.md and {CONFIG}/conf.py not found under {root}: the site is built from a clone "
                        "of the course, with nstlib installed from it (pip install -e \".[site]\")")
    readme = (root / "README.md").read_text(encoding="utf-8")
    owner_name, branch = repository(readme)
    blob = f"https://github.com/{owner_name}/blob/{branch}/"
    books = notebooks(root)
    if not books:
        raise SiteError(f"no notebooks/NN_*.ipynb under {root}: the site is built from a clone of the course")
    pages = {"README.md"} | {f"notebooks/{p.name}" for p in books}
    notes: list[str] = []

    shutil.copytree(root / CONFIG, dest, dirs_exist_ok=True)
    index, missing = rewrite_links(readme, "README.md", pages, root, blob)
    notes += [f"README.md: {m} is not in the repository yet: shown as text" for m in missing]
    toctree = "\n".join(f"notebooks/{p.stem}" for p in books)
    index += f"\n\n```{{toctree}}\n:hidden:\n:caption: Notebooks\n\n{toctree}\n```\n"
    (dest / "index.md").write_text(index, encoding="utf-8")

    (dest / "notebooks").mkdir()
    for path in books:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = []
        for cell in nb["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "markdown":
                source, missing = rewrite_links(source, f"notebooks/{path.name}", pages, root, blob)
                notes += [f"{path.name}: {m} is not in the repository yet: shown as text" for m in missing]
                cell["source"] = source
            cells.append(cell)
            if cell["cell_type"] == "code" and not cell.get("outputs") and _WIDGET_CELL.search(source):
                cells.append({"cell_type": "markdown", "metadata": {}, "source": WIDGET_NOTE})
                notes.append(f"{path.name}: widget cell {cell.get('execution_count')}: a note instead of the widgets")
        for i, cell in enumerate(cells):
            cell.setdefault("id", f"cell-{i}")  # nbformat 4.5's cell ids (the stored notebooks are 4.4)
        nb["cells"], nb["nbformat_minor"] = cells, max(nb.get("nbformat_minor", 0), 5)
        # IPython's lexer: the setup cell's `!git clone` and `%pip` are not Python
        nb["metadata"].setdefault("language_info", {})["pygments_lexer"] = "ipython3"
        (dest / "notebooks" / path.name).write_text(json.dumps(nb), encoding="utf-8")

    mathjax = _mathjax_files()
    target = dest / "_static" / "mathjax"
    for name in ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "a11y", "ui"):
        source = mathjax / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return notes


def _mathjax_files() -> Path:
    """MathJax 3's files as the sphinx-mathjax-offline wheel ships them (its folder name has dashes)."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" if spec else None
    if folder is None or not (folder / "tex-chtml.js").is_file():
        raise SiteError("MathJax not found (the sphinx-mathjax-offline package); " + INSTALL_HINT)
    return folder


def _check_out(out: Path) -> None:
    """Never write into a folder that holds something other than an earlier build of the site."""
    if out.exists() and not out.is_dir():
        raise SiteError(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
    if out.is_dir() and any(out.iterdir()) and not (out / ".buildinfo").is_file():
        raise SiteError(f"--out {str(out)!r} is a folder that holds something other than a built site; "
                        "choose an empty or new folder")


def build(out: str | Path | None = None, root: Path = ROOT) -> SiteResult:
    """Build the site into `out` (default build/site): stage the sources, run Sphinx's HTML builder
    on them (fresh, nothing executed), replace the previous build. Raises SiteError."""
    try:
        from sphinx.application import Sphinx
        from sphinx.errors import SphinxError
        import myst_nb  # noqa: F401  (the notebook reader docs/site/conf.py names)
        import sphinx_book_theme  # noqa: F401
    except ImportError:
        raise SiteError(INSTALL_HINT) from None
    from sphinx.util.console import nocolor

    nocolor()  # warnings go into the result as plain text
    out = Path(out).expanduser().resolve() if out is not None else DEFAULT_OUT
    _check_out(out)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nstlib-site-") as tmp:
        src, html = Path(tmp) / "src", Path(tmp) / "html"
        notes = stage(src, root)
        owner_name, branch = repository((root / "README.md").read_text(encoding="utf-8"))
        status, warning = io.StringIO(), io.StringIO()
        try:
            app = Sphinx(src, src, html, Path(tmp) / "doctrees", "html", freshenv=True, status=status,
                         warning=warning, confoverrides={
                             "html_theme_options.repository_url": f"https://github.com/{owner_name}",
                             "html_theme_options.repository_branch": branch})
            app.build(force_all=True)
        except SphinxError as e:
            raise SiteError(f"Sphinx failed: {e}") from None
        if app.statuscode:
            raise SiteError(f"Sphinx failed: {' '.join(warning.getvalue().split())[-500:]}")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(html, out)
    for path in notebooks(root):  # the download button gives the notebook as committed, not the staged copy
        if (out / "_sources" / "notebooks" / path.name).is_file():
            shutil.copy2(path, out / "_sources" / "notebooks" / path.name)
    warnings = [line.replace(str(src) + "/", "") for line in warning.getvalue().splitlines() if line.strip()]
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_"))
    return SiteResult(out, pages, time.perf_counter() - start, warnings, notes)
