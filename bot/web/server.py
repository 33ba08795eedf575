"""The aiohttp application: `/health` now, more endpoints by feature."""

from __future__ import annotations

from aiohttp import web

from bot.services.health import HealthService

HEALTH = web.AppKey("health", HealthService)


async def health(request: web.Request) -> web.Response:
    status, body = await request.app[HEALTH].report()
    return web.json_response(body, status=status)


def create_web_app(health_service: HealthService) -> web.Application:
    app = web.Application()
    app[HEALTH] = health_service
    app.router.add_get("/health", health)
    return app


async def start_web(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
