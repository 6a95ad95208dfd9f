"""The FastAPI application: every room's router, the pages, health, and the error format."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import structlog
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metropilot import __version__
from metropilot.accounts import api as accounts_api
from metropilot.assets import api as assets_api
from metropilot.assets import ngsi_api
from metropilot.bootstrap import prepare
from metropilot.core.platform import Platform
from metropilot.core.problems import PROBLEM_TYPES, Problem, install_problem_handlers, problem_response
from metropilot.core.settings import get_settings
from metropilot.territory import api as territory_api

log = structlog.get_logger(__name__)

_WEB = resources.files("metropilot.web")
# The control room loads only its own files; MapLibre runs its worker from a blob: URL.
_CSP = (
    "default-src 'self'; script-src 'self'; worker-src blob:; child-src blob:; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds security headers to every response (a pure ASGI middleware: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend(_SECURITY_HEADERS)
                if not scope["path"].startswith(("/api/", "/ngsi-ld/", "/auth/")):
                    headers.append((b"content-security-policy", _CSP.encode()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(platform: Platform | None = None, *, bootstrap: bool = True) -> FastAPI:
    """Build the application. ``metropilot run`` prepares the platform before serving; a bare
    ``uvicorn --factory metropilot.web.app:create_app`` prepares it at start-up."""
    platform = platform or Platform.from_settings(get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if bootstrap:
            report = prepare(platform, seed=platform.settings.seed_on_start)
            if report.admin_password:
                log.warning("first administrator created", username="admin", password=report.admin_password)
        # Few threads, busy, beat many threads fighting over the GIL: with 40 (anyio's default) a
        # burst of requests made each wait through many GIL hand-overs (4x lower throughput measured,
        # see BENCHMARKS.md).
        to_thread.current_default_thread_limiter().total_tokens = platform.settings.worker_threads
        await platform.bus.start()
        platform.ready = True
        try:
            yield
        finally:
            platform.ready = False
            await platform.bus.stop()
            platform.close()

    app = FastAPI(
        title="metropilot",
        version=__version__,
        summary="Run a metropolis' public space from one connected control room.",
        description=(
            "HTTP API of metropilot. Authenticate with the OAuth2 password flow at `POST /auth/token` and send "
            "`Authorization: Bearer <token>`. Errors are RFC 9457 problem details (`application/problem+json`); "
            "the NGSI-LD API under `/ngsi-ld/v1/` uses the NGSI-LD error format."
        ),
        lifespan=lifespan,
    )
    app.state.platform = platform
    install_problem_handlers(app, renderers={"/ngsi-ld/": ngsi_api.render_problem})
    app.add_middleware(SecurityHeaders)

    app.include_router(accounts_api.auth_router)
    app.include_router(accounts_api.router)
    app.include_router(territory_api.router)
    app.include_router(assets_api.router)
    app.include_router(ngsi_api.router)
    app.mount("/static", StaticFiles(directory=str(_WEB / "static")), name="static")

    @app.get("/health", tags=["platform"], summary="200 once the platform is ready, 503 before")
    def health() -> Response:
        if not platform.ready:
            return problem_response(Problem("not-ready", "The platform is starting."), "/health")
        try:
            with platform.db.read() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            log.error("health check: database unreachable", error=str(exc))
            return problem_response(Problem("not-ready", "The database is unreachable."), "/health")
        body: dict[str, Any] = {"status": "ok", "version": __version__, "database": platform.db.dialect}
        return JSONResponse(body)

    @app.get("/", include_in_schema=False)
    def control_room() -> FileResponse:
        return FileResponse(str(_WEB / "pages" / "control-room.html"), media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg")

    @app.get("/problems/{slug}", include_in_schema=False)
    def problem_type(slug: str, request: Request) -> HTMLResponse:
        problem = PROBLEM_TYPES.get(slug)
        if problem is None:
            raise Problem("not-found", f"No problem type {slug!r}.")
        title = html.escape(problem.title)
        body = (
            f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{title}</title><h1>{title}</h1>"
            f"<p>HTTP {problem.status}</p><p>{html.escape(problem.description)}</p>"
        )
        return HTMLResponse(body)

    return app
