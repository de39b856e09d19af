"""GraphiQL without a CDN (issue #12, DESIGN.md §3b): government networks often cannot reach unpkg.com.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from unpkg.com. The same files, taken
unchanged from their npm packages, are vendored in api/static/graphiql/ (SOURCES.md: versions, licences;
SHA256SUMS) and served at ``/static/graphiql/``; the page's URLs are pointed there. The page's ``integrity``
attributes stay, so the browser still checks every file against the hash Strawberry published.
"""

from __future__ import annotations

from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
PREFIX = "/static/graphiql/"
# The page's unpkg URL → the vendored file.
VENDORED = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": "react-dom.production.min.js",
    "https://unpkg.com/js-cookie@3.0.5/dist/js.cookie.min.js": "js.cookie.min.js",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": "plugin-explorer.umd.js",
}


def offline_graphiql_html() -> str:
    """Strawberry's GraphiQL page loading only this service's files. A Strawberry upgrade that names other versions
    leaves their URLs in place: tests/api/test_graphiql_offline.py then fails until the files are vendored again."""
    html = get_graphql_ide_html(graphql_ide="graphiql")
    for url, name in VENDORED.items():
        html = html.replace(f'src="{url}"', f'src="{PREFIX}{name}"').replace(f'href="{url}"', f'href="{PREFIX}{name}"')
    return html
