"""The models of the answers in /openapi.json (nothing validates an answer, so they are declared
here), and MODELS: every schema the document carries, the request models from core.messages
first."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..core.messages import REQUEST_MODELS


class ErrorDetail(BaseModel):
    code: str = Field(description="snake_case error code, e.g. `rate_limited`")
    message: str = Field(description="A human sentence")


class ErrorBody(BaseModel):
    error: ErrorDetail
    retry_after: int | None = Field(None, description="Seconds to wait (429 and some 503)")


class SessionCreated(BaseModel):
    session_id: str = Field(description="uuid4")
    token: str = Field(description="JWT for `Authorization: Bearer`")
    expires_at: str = Field(description="ISO-8601 UTC")


class SessionValid(BaseModel):
    valid: Literal[True]
    session_id: str
    expires_at: str


class WidgetDefaults(BaseModel):
    site: str = Field(description="The site's id (`default` without SITES_FILE)")
    title: str | None = None
    greeting: str | None = None
    language: str | None = Field(None, description="A language tag, e.g. `en`, `pt-BR`")
    theme: Literal["light", "dark", "auto"] | None = None
    accent: str | None = Field(None, description="`#rrggbb`")


class HistoryMessage(BaseModel):
    message_id: str
    role: Literal["user", "assistant"]
    text: str
    created_at: str
    incomplete: bool | None = Field(
        None,
        description="Only on an answer cut short (its worker died, a restart, an n8n error "
        "mid-stream): `true`, and `text` is the part received (docs/turn-leases.md).",
    )


class History(BaseModel):
    session_id: str
    messages: list[HistoryMessage]


class Check(BaseModel):
    status: Literal["ok", "fail"]
    detail: str | None = None
    latency_ms: float | None = None
    backend: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded", "shutting_down"]
    checks: dict[str, Check]
    failing: list[str] | None = None


MODELS: list[type[BaseModel]] = [
    *REQUEST_MODELS,
    ErrorBody,
    SessionCreated,
    SessionValid,
    WidgetDefaults,
    History,
    Health,
]
