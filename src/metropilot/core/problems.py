"""RFC 9457 problem details: the one error format of the HTTP API.

Each problem type has a stable slug; its ``type`` member is the relative URI ``/problems/<slug>``,
which the platform serves as a short explanation page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    title: str
    status: int
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("malformed-json", "Malformed JSON", 400, "The request body is not valid JSON."),
        ProblemType(
            "validation-error",
            "Invalid request",
            422,
            "One or more fields are missing or invalid; `errors` lists each with a JSON pointer.",
        ),
        ProblemType("bad-request", "Bad request", 400, "The request cannot be understood as sent."),
        ProblemType("unknown-asset-type", "Unknown asset type", 422, "The asset type is not one the registry knows."),
        ProblemType(
            "outside-metropolis",
            "Location outside the métropole",
            422,
            "The position is not within the 23 communes of the métropole (with the configured tolerance).",
        ),
        ProblemType(
            "commune-mismatch",
            "Location not in the declared commune",
            422,
            "The position lies in another commune than the one declared.",
        ),
        ProblemType("unknown-commune", "Unknown commune", 422, "No commune of the métropole has this INSEE code."),
        ProblemType(
            "commune-out-of-scope",
            "Commune outside your scope",
            403,
            "Your account is scoped to other communes: you cannot see or act on this one.",
        ),
        ProblemType("forbidden", "Forbidden", 403, "Your roles do not grant this action."),
        ProblemType(
            "not-authenticated",
            "Authentication required",
            401,
            "Send a valid bearer token (POST /auth/token).",
        ),
        ProblemType(
            "invalid-credentials",
            "Invalid credentials",
            400,
            "The username, password or refresh token is wrong (OAuth2 error `invalid_grant`).",
        ),
        ProblemType(
            "too-many-attempts",
            "Too many failed attempts",
            429,
            "Too many failed logins for this account; wait before trying again.",
        ),
        ProblemType("not-found", "Not found", 404, "No such resource (or it is outside your scope)."),
        ProblemType("duplicate-id", "Duplicate identifier", 409, "A resource with this identifier already exists."),
        ProblemType("conflict", "Conflict", 409, "The request conflicts with the current state of the resource."),
        ProblemType(
            "precondition-failed",
            "Precondition failed",
            412,
            "The resource changed since you read it (If-Match did not match its ETag).",
        ),
        ProblemType("asset-retired", "Asset retired", 409, "A retired asset is kept for history and cannot change."),
        ProblemType(
            "import-rejected",
            "Import rejected",
            422,
            "The import was refused as a whole; `errors` names every faulty row and field. Nothing was saved.",
        ),
        ProblemType("unsupported-media-type", "Unsupported media type", 415, "Send a format the endpoint accepts."),
        ProblemType("not-acceptable", "Not acceptable", 406, "The endpoint cannot produce the requested format."),
        ProblemType("payload-too-large", "Payload too large", 413, "The request body exceeds the allowed size."),
        ProblemType("method-not-allowed", "Method not allowed", 405, "This resource does not support the method."),
        ProblemType("not-ready", "Not ready", 503, "The platform is starting; retry shortly."),
        ProblemType("internal-error", "Internal error", 500, "An unexpected error; it has been logged."),
    )
}

_STATUS_SLUGS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-attempts",
    503: "not-ready",
}


class Problem(Exception):
    """Raise anywhere below the API layer; the handler turns it into problem+json."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        problem_type = PROBLEM_TYPES[slug]
        self.slug = slug
        self.title = problem_type.title
        self.status = status or problem_type.status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(detail or problem_type.title)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": f"/problems/{self.slug}", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    headers = dict(problem.headers)
    return Response(
        content=orjson.dumps(problem.body(instance)),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def json_pointer(location: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic error location -> RFC 6901 JSON pointer (``("body", "location", 0)`` -> ``#/location/0``)."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        if where == "body":
            return "#/" + "/".join(rest)
        return f"{where}:" + ".".join(rest)
    return "#/" + "/".join(parts)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        entry = {"pointer": json_pointer(tuple(error.get("loc", ()))), "detail": error.get("msg", "invalid")}
        if error.get("type"):
            entry["code"] = error["type"]
        out.append(entry)
    return out


def problem_from_validation(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        detail = next((str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid"), "")
        return Problem("malformed-json", f"The body is not valid JSON: {detail}".rstrip(": "))
    return Problem("validation-error", f"{len(errors)} invalid field(s)", errors=validation_errors(errors))


def problem_from_http(exc: StarletteHTTPException) -> Problem:
    slug = _STATUS_SLUGS.get(exc.status_code, "bad-request" if exc.status_code < 500 else "internal-error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return Problem(slug, detail, status=exc.status_code, headers=dict(exc.headers or {}))


ProblemRenderer = Callable[[Problem, str], Response]


def install_problem_handlers(app: FastAPI, renderers: Mapping[str, ProblemRenderer] | None = None) -> None:
    """Every error leaves the API as problem+json.

    ``renderers`` maps a path prefix to another rendering of the same problems, for APIs whose
    specification fixes its own error format (NGSI-LD under /ngsi-ld/).
    """
    by_prefix = sorted((renderers or {}).items(), key=lambda item: -len(item[0]))

    def render(request: Request, problem: Problem) -> Response:
        path = request.url.path
        for prefix, renderer in by_prefix:
            if path.startswith(prefix):
                return renderer(problem, path)
        return problem_response(problem, path)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, problem_from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return render(request, problem_from_http(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return render(request, Problem("internal-error", "An unexpected error occurred; it has been logged."))
