"""The web page: one HTML document with its script and stylesheet, as files.

There is no build step: the files under `static/` are what the browser gets.
The page calls the same public API as any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from backend.errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# The page loads nothing from elsewhere and runs no inline script, so text
# from a document that slipped into the markup could neither run nor call out.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Files change with the code, never under a running server's feet for
    # long; revalidating keeps a reload after an upgrade from mixing versions.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _served_files() -> dict[str, Path]:
    """Only files present at start are served: no path from a request ever
    reaches the file system."""
    return {
        path.name: path
        for path in STATIC.iterdir()
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


FILES = _served_files()


def _file(name: str) -> FileResponse:
    path = FILES.get(name)
    if path is None:
        raise NotFound(f"no file '{name}' in the web page's static files")
    return FileResponse(
        path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS
    )


@router.get("/")
async def index() -> FileResponse:
    """The page: submit a document, follow its job, read the summary."""
    return _file("index.html")


@router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    return _file(name)
