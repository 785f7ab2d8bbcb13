"""Sphinx configuration of the course site (`python -m nstlib site`, nstlib/site.py).

nstlib.site copies this folder next to the staged sources (README.md as index.md, the notebooks)
and builds with it; `sphinx-build` is never run on docs/site itself. Nothing is executed: the pages
show the outputs stored in the notebooks.
"""
project = "Neural style transfer, hands on"
author = "the nst-course authors"
copyright = "the nst-course authors; code MIT (LICENSE)"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ math, GitHub-style anchors for `[..](#a-heading)` links
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True  # $$...$$ inside a paragraph or list item is display math, as in Jupyter
# MyST-NB: render the stored outputs, never execute
nb_execution_mode = "off"
nb_merge_streams = True

# MathJax 3, served from the site itself (nstlib.site copies it into _static/mathjax from the
# sphinx-mathjax-offline wheel): no CDN, so math renders offline and in CI.
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {}}  # MyST adds its processHtmlClass here

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"  # also spares the browser a request for /favicon.ico
html_css_files = ["course.css"]
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": "",  # filled in by nstlib.site from the README's Colab links
    "use_repository_button": True,
    "use_download_button": True,
    "home_page_in_toc": False,  # the title above the sidebar leads home
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
}
