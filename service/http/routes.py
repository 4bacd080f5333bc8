"""The app's routes as its router tries them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Route


def routes_in_order(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """Every route in the order the router tries them, included routers' ones in their place."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        nested = getattr(getattr(route, "original_router", route), "routes", None)
        if nested is not None and nested is not routes:
            yield from routes_in_order(nested)
