"""``lbam serve``: a web editor to paint masks and inpaint, and the HTTP API behind it (FastAPI)."""
