"""FastAPI's view of the services the app's lifespan opened."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.services import Services


async def get_services(request: Request) -> Services:
    # async def: FastAPI runs a plain def dependency in a worker thread, a thread hop per
    # request that cost a quarter of the metadata requests per second (bench/, benchmark 4).
    # The lifespan's state as uvicorn copies it into each request's scope (request.state would
    # wrap it in a new State object per request).
    services: Services = request.scope["state"]["services"]
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
