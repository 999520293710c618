"""`cnnzoo serve`: the zoo in a browser (needs the `serve` extra: starlette, uvicorn).

    from cnnzoo.serve import create_app      # a Starlette app; run it with any ASGI server
"""

from .app import create_app

__all__ = ["create_app"]
