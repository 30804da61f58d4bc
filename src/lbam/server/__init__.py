"""``lbam serve``: a web editor to paint masks and inpaint, and the HTTP API behind it (FastAPI)."""

# Headless Chromium as the tests and the screenshot script drive the page: no sandbox (containers),
# no GPU, and none of the background traffic a browser starts on its own.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
