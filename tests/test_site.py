"""The course site (issue 26) in a real browser. nstlib.site builds it from the stored notebooks, a
thread HTTP server serves it on 127.0.0.1, and headless Chromium (tests/chromium.py, Debian's
`chromium`) opens every page. Each page must load (HTTP 200, no failed request, nothing fetched from
another host, no JavaScript error); every internal link must reach a page, and an anchor on it, that
exists; every image must load (naturalWidth > 0); every formula must be typeset by MathJax (no raw
`$$` or `\\(` left in the text, no MathJax error). Screenshots of the landing page and notebook 03 are
saved to build/site-screenshots/ to look at. The last test breaks a copy of the site (an image,
MathJax, two links) and checks that the same checks fail it.

Needs the [site] extra (pip install -e ".[site]") and Chromium (apt-get install chromium): without
them the tests are skipped on a user's machine, saying what to install; in CI (CI=1; .ci/run installs
both) they fail instead, so nothing is skipped there.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest

from tests.chromium import Chromium, find_chromium

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "site-screenshots"
NOTEBOOK_03 = "notebooks/03_gatys_style_transfer.html"
# Sphinx 9 deprecates APIs that MyST-NB and the theme still use: their warnings are not ours
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")


def _require(ok: bool, message: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs it: .ci/run)")
        pytest.skip(message)


def _importable(*names: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(n) is not None for n in names)


# What a page shows once its images have loaded and MathJax has typeset it. Code (pre, code) and
# MathJax's own output are left out of `text`, so raw TeX found there was never typeset.
PROBE = """(async () => {
  const wait = ms => new Promise(r => setTimeout(r, ms));
  for (const img of document.images) img.loading = "eager";
  await Promise.race([wait(20000), Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r); })))]);
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) await Promise.race([mj.startup.promise, wait(30000)]);
  const body = document.body.cloneNode(true);
  body.querySelectorAll("pre, code, script, style, mjx-container, .highlight").forEach(e => e.remove());
  return {
    title: document.title,
    text: body.textContent,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    ids: [...document.querySelectorAll("[id]")].map(e => e.id)
           .concat([...document.querySelectorAll("a[name]")].map(a => a.name)),
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth})),
    math: document.querySelectorAll(".math").length,
    typeset: document.querySelectorAll("mjx-container").length,
    untypeset: [...document.querySelectorAll(".math")].filter(e => !e.querySelector("mjx-container"))
                 .map(e => e.textContent.trim().slice(0, 60)),
    // a TeX error (mjx-merror), or an undefined macro, which MathJax shows as red text
    mathjax_errors: [...document.querySelectorAll("mjx-merror, mjx-mtext[style*='color: red']")]
                      .map(e => e.getAttribute("data-mjx-error") || e.closest(".math").textContent.trim()),
  };
})()"""
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^\s$][^$\n]{0,200}?[^\s$\\]\$")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a tab closed while a file was sent
            super().handle_error(request, client_address)


@functools.lru_cache(maxsize=None)
def _serve(folder: str) -> str:
    """http://127.0.0.1:PORT/ serving `folder` from a daemon thread (one server per folder)."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def visit(browser: Chromium, url: str, origin: str, screenshot: Path | None = None) -> dict:
    """Open `url`, wait for images and MathJax, and return what PROBE saw plus `problems`: what
    fails the page, one line each."""
    page = browser.open(url)
    try:
        report = page.evaluate(PROBE)
        if screenshot is not None:
            page.screenshot(screenshot)
        problems = []
        status = page.requests.get(url)
        if status != 200:
            problems.append(f"the page answered HTTP {status}")
        problems += [f"failed to load {u}: {error}" for u, error in page.failed.items()]
        problems += [f"HTTP {s}: {u}" for u, s in page.requests.items() if s is not None and s >= 400]
        problems += [f"fetched from another host: {u}" for u in page.requests
                     if not u.startswith((origin, "data:", "blob:", "about:"))]
        problems += [f"JavaScript error: {e.splitlines()[0]}" for e in page.exceptions]
    finally:
        page.close()
    problems += [f"image did not load (naturalWidth 0): {i['src']}" for i in report["images"] if i["width"] == 0]
    for m in RAW_TEX.finditer(report["text"]):
        context = report["text"][max(0, m.start() - 30): m.end() + 30].replace("\n", " ")
        problems.append(f"raw TeX in the text (MathJax did not typeset it): ...{context}...")
    problems += [f"formula not typeset: {t}" for t in report["untypeset"]]
    problems += [f"MathJax error: {e}" for e in report["mathjax_errors"]]
    report["problems"] = problems
    return report


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(v for k, v in attrs.items() if k == "id" or (tag == "a" and k == "name"))


def broken_links(reports: dict[str, dict], origin: str) -> list[str]:
    """Every <a href> on the visited pages that points into the site must reach an existing file
    (HTTP 200) and, with a #fragment, an element with that id on the target page."""
    status: dict[str, int] = {}
    ids = {origin + page: set(r["ids"]) for page, r in reports.items()}
    broken = []
    for page, report in reports.items():
        for link in sorted(set(report["links"])):
            if not link.startswith(origin):
                continue  # other sites are not checked (no internet here)
            target, fragment = urldefrag(link)
            if target.endswith("/"):
                target += "index.html"
            if target not in status:
                try:
                    with urllib.request.urlopen(target, timeout=30) as response:
                        status[target] = response.status
                        if target not in ids and response.headers.get_content_type() == "text/html":
                            parser = _Ids()
                            parser.feed(response.read().decode("utf-8", "replace"))
                            ids[target] = parser.ids
                except urllib.error.HTTPError as e:
                    status[target] = e.code
            if status[target] != 200:
                broken.append(f"{page}: {link} (HTTP {status[target]})")
            elif fragment and unquote(fragment) not in ids.get(target, ()):
                broken.append(f"{page}: {link} (no element with id {unquote(fragment)!r})")
    return broken


def _pages(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.html")
                  if not p.relative_to(folder).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _require(_importable("sphinx", "myst_nb", "sphinx_book_theme", "websocket"),
             'the course site needs its extra: pip install -e ".[site]"')
    _require(find_chromium() is not None, "the site test needs Chromium: apt-get install chromium")
    from nstlib import site

    return site.build(tmp_path_factory.mktemp("site") / "html")


@pytest.fixture(scope="module")
def browser(built):
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def reports(built, browser):
    """Every page of the site, opened in Chromium: page -> visit()'s report."""
    origin = _serve(str(built.out))
    shots = {"index.html": SCREENSHOTS / "landing.png", NOTEBOOK_03: SCREENSHOTS / "03_gatys_style_transfer.png"}
    return {page: visit(browser, origin + page, origin, shots.get(page)) for page in _pages(built.out)}


def test_the_site_builds_without_warnings(built):
    assert built.warnings == []
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert {"index.html", "search.html"} | {f"notebooks/{p.stem}.html" for p in notebooks} <= set(built.pages)
    index = (built.out / "index.html").read_text()
    assert "The notebooks" in index and "03_gatys_style_transfer.html" in index  # the README's course table


def test_every_page_loads_with_its_images_and_math(reports):
    assert len(reports) >= 10
    problems = [f"{page}: {p}" for page, r in reports.items() for p in r["problems"]]
    assert problems == [], "\n".join(problems)


def test_no_broken_internal_link(reports, built):
    assert broken_links(reports, _serve(str(built.out))) == []


def test_notebook_pages_show_the_stored_figures_math_badge_and_neighbours(reports):
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        stored = sum(1 for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
                     if any(k.startswith("image/") for k in o.get("data", {})))
        report = reports[f"notebooks/{path.stem}.html"]
        figures = [i for i in report["images"] if re.search(r"/_images/[0-9a-f]{64}\.(jpe?g|png)$", i["src"])]
        assert len(figures) == stored, f"{path.name}: {len(figures)} figures on the page, {stored} stored"
        assert report["title"].startswith(path.stem[:2] + " · "), report["title"]
        links = set(report["links"])
        assert any("colab.research.google.com/github/" in u and u.endswith(path.name) for u in links), path.name
        assert any(i["src"].endswith("colab-badge.svg") and i["width"] > 0 for i in report["images"]), path.name
        number = int(path.stem[:2])
        before = sorted((ROOT / "notebooks").glob(f"{number - 1:02d}_*.ipynb"))
        if before:  # the previous/next links at the top of the notebook
            assert any(u.endswith(f"notebooks/{before[0].stem}.html") for u in links), path.name
    assert reports[NOTEBOOK_03]["typeset"] >= 20  # notebook 03's equations, typeset


def test_screenshots_of_the_landing_page_and_notebook_03(reports):
    from PIL import Image

    for name in ("landing.png", "03_gatys_style_transfer.png"):
        with Image.open(SCREENSHOTS / name) as image:
            assert image.width >= 1000 and image.height >= 1000, image.size
            assert len(image.convert("L").getcolors(1 << 16) or range(1 << 16)) > 50  # not a blank page


def test_the_checks_fail_a_broken_site(built, browser, tmp_path):
    """A copy of the site with a figure deleted, MathJax missing from a page, an undefined TeX macro
    and two dead links must fail."""
    broken = tmp_path / "broken"
    shutil.copytree(built.out, broken)
    page03 = (broken / NOTEBOOK_03).read_text()
    figure = re.search(r"_images/([0-9a-f]{64}\.jpe?g)", page03).group(1)
    (broken / "_images" / figure).unlink()
    assert "_static/mathjax/tex-chtml.js" in page03
    (broken / NOTEBOOK_03).write_text(page03.replace("_static/mathjax/tex-chtml.js", "_static/mathjax/gone.js"))
    page04 = broken / "notebooks" / "04_style_as_mmd.html"
    assert r"\mathrm{MMD}" in page04.read_text()
    page04.write_text(page04.read_text().replace(r"\mathrm{MMD}", r"\MMD", 1))  # an undefined macro
    index = (broken / "index.html").read_text()
    (broken / "index.html").write_text(index.replace(
        "</body>", '<a href="notebooks/no_such_page.html">x</a><a href="#no-such-anchor">y</a></body>'))
    origin = _serve(str(broken))
    reports = {page: visit(browser, origin + page, origin)
               for page in ("index.html", NOTEBOOK_03, "notebooks/04_style_as_mmd.html")}
    problems04 = reports["notebooks/04_style_as_mmd.html"]["problems"]
    assert any(p.startswith("MathJax error: ") and r"\MMD" in p for p in problems04), problems04
    problems = "\n".join(reports[NOTEBOOK_03]["problems"])
    assert f"image did not load (naturalWidth 0): {origin}_images/{figure}" in problems
    assert f"HTTP 404: {origin}_static/mathjax/gone.js" in problems
    assert "raw TeX in the text" in problems and "formula not typeset" in problems
    links = broken_links(reports, origin)
    assert f"index.html: {origin}notebooks/no_such_page.html (HTTP 404)" in links
    assert f"index.html: {origin}index.html#no-such-anchor (no element with id 'no-such-anchor')" in links


# --- nstlib.site's own logic: no Sphinx, no browser needed, so these run everywhere

def test_site_command_without_the_extra_says_what_to_install(monkeypatch, capsys):
    from nstlib.__main__ import main

    monkeypatch.setitem(sys.modules, "sphinx", None)  # import sphinx now fails as if not installed
    monkeypatch.setitem(sys.modules, "sphinx.application", None)
    assert main(["site"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[site]"' in err


def test_the_output_folder_must_be_new_empty_or_an_earlier_site(tmp_path):
    from nstlib.site import SiteError, _check_out

    _check_out(tmp_path / "new")
    _check_out(tmp_path)  # empty
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="holds something other than a built site"):
        _check_out(tmp_path)
    with pytest.raises(SiteError, match="is a file"):
        _check_out(tmp_path / "notes.txt")
    (tmp_path / ".buildinfo").write_text("# Sphinx build info")
    _check_out(tmp_path)  # an earlier build: replaced


def test_links_are_adapted_for_the_site():
    from nstlib.site import COLAB_BADGE, rewrite_links

    pages = {"README.md", "notebooks/01_a.ipynb", "notebooks/02_b.ipynb"}
    blob = "https://github.com/o/r/blob/main/"
    text = (f"[![Open In Colab]({COLAB_BADGE})](https://colab.research.google.com/github/o/r/blob/main/x.ipynb) "
            "[← 01_a](01_a.ipynb) · [03_c →](03_c.ipynb#top) [solution](solutions/nb01.py) [up](../README.md)"
            " [far](../../etc/passwd) [here](#setup) `layers[0](x)`\n"
            "```python\n[kept](03_c.ipynb)\n```\n"
            "1. Why?\n   <details><summary>Answer</summary>\n   Because $x^2$.\n   </details>\n")
    out, missing = rewrite_links(text, "notebooks/02_b.ipynb", pages, ROOT, blob)
    assert "[![Open In Colab](/_static/colab-badge.svg)](https://colab.research.google.com/" in out
    assert "[← 01_a](01_a.ipynb)" in out and "[up](../README.md)" in out and "[here](#setup)" in out
    assert " · 03_c → " in out and missing == ["notebooks/03_c.ipynb"]  # not written yet: text
    assert f"[solution]({blob}notebooks/solutions/nb01.py)" in out  # a repository file: on GitHub
    assert "[far](../../etc/passwd)" in out  # outside the repository: left alone
    assert "`layers[0](x)`" in out and "```python\n[kept](03_c.ipynb)\n```" in out
    assert "<details><summary>Answer</summary>\n\n   Because $x^2$.\n\n   </details>" in out
