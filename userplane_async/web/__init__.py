"""Serving recordings' resources to browsers from a web app, with ``Range`` support.

One module per framework, each importing only its own framework and only when imported:
``userplane_async.web.aiohttp`` (aiohttp.web) and ``userplane_async.web.starlette``
(Starlette, and so FastAPI). The rest of the SDK never imports them.
"""
