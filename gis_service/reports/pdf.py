"""HTML to PDF with the Chromium the page tests already use (Debian's ``chromium``, driven
by Playwright): A4, the page's print CSS, page numbers in the footer. Nothing is loaded
from anywhere: the page is set as content and every request it would make is refused.

Chromium stamps each PDF with its creation time, so two renderings of the same page
differ in bytes; a version keeps the bytes it was sent with (versions.py)."""

from __future__ import annotations

import html

#: Debian's Chromium (Makefile: the ``system`` step installs it with fonts-noto-cjk)
CHROMIUM = "/usr/bin/chromium"
#: how every Chromium of ours starts (this PDF, the browser tests, the benchmarks): no
#: background traffic to outside hosts, no sandbox in containers
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def to_pdf(page_html: str, footer: str) -> bytes:
    """The page printed to PDF (A4, backgrounds, ``footer`` and "page / pages" at the
    bottom of each page). Raises RuntimeError if Chromium cannot be started."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    foot = (
        "<div style=\"font-family: 'Noto Sans CJK SC', sans-serif; font-size: 7pt; "
        "color: #666; width: 100%; padding: 0 12mm; display: flex; "
        'justify-content: space-between;">'
        f"<span>{html.escape(footer)}</span>"
        '<span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>'
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.abort())
                page.set_content(page_html, wait_until="load")
                page.emulate_media(media="print")
                page.evaluate("document.fonts.ready.then(() => true)")
                return page.pdf(
                    format="A4",
                    print_background=True,
                    prefer_css_page_size=True,
                    display_header_footer=True,
                    header_template="<span></span>",
                    footer_template=foot,
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise RuntimeError(f"Chromium could not print the report: {exc}") from exc
