"""The aiohttp application: `/health`, `/metrics`, and the webhook when it is on."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.metrics import Metrics
from bot.services.health import HealthService

HEALTH = web.AppKey("health", HealthService)
METRICS = web.AppKey("metrics", Metrics)


async def health(request: web.Request) -> web.Response:
    status, body = await request.app[HEALTH].report()
    return web.json_response(body, status=status)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_web_app(health_service: HealthService, metrics_registry: Metrics) -> web.Application:
    app = web.Application()
    app[HEALTH] = health_service
    app[METRICS] = metrics_registry
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


async def start_web(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
