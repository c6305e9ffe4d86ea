"""Logging setup for `entra-rbac run`: text (for people) or JSON (for collectors), secrets redacted.

Holds the two formatters and `configure_logging`. Messages read like Kubernetes' own: the
message says what happened ("Created RoleBinding") and the objects travel as extra fields
(`logger.info("Created RoleBinding", extra=fields(namespace=..., name=...))`), printed as
`key=value` in text and as JSON keys in JSON. `fields()` exists because `extra=` may not use
the LogRecord's own attribute names, and `name` is one of them. It must not import kopf, clients or adapters
(named `logsetup` so it never shadows the standard library's `logging`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[REDACTED]"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# kopf's per-object logger attaches these for its own use (event posting, settings).
_KOPF_PRIVATE = frozenset({"k8s_skip", "k8s_ref", "settings"})
_FIELDS = "entra_rbac_fields"
# Loggers that are chatty at INFO or may print request details: quiet unless debugging.
_NOISY = ("urllib3", "azure", "httpx", "httpcore", "kubernetes", "asyncio", "aiohttp.access")


class _Redacting(logging.Formatter):
    """Replaces every known secret in the finished line: the last line of defence."""

    secrets: tuple[str, ...] = ()

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def _object(record: logging.LogRecord) -> str | None:
    """The custom resource kopf is handling when this was logged (kopf's per-object loggers)."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    namespace = ref.get("namespace")
    return f"{namespace}/{ref['name']}" if namespace else str(ref["name"])


def fields(**values: object) -> dict[str, object]:
    """Structured fields for `extra=`, any names allowed (`name`, `msg`): printed as key=value."""
    return {_FIELDS: values}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and key not in _KOPF_PRIVATE and key != _FIELDS and not key.startswith("_")
    }
    return {**getattr(record, _FIELDS, {}), **extras}


class TextFormatter(_Redacting):
    """`2026-11-28T10:00:00Z INFO entra_rbac.reconciler Created RoleBinding namespace=a name=b`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        head, newline, rest = super().format(record).partition("\n")
        extras = _extras(record)
        resource = _object(record)
        if resource:
            extras = {"resource": resource, **extras}
        if extras:
            # Fields go on the first line, before any traceback.
            head += " " + " ".join(f"{key}={_quote(value)}" for key, value in extras.items())
        return self._redact(head + newline + rest)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class JsonLinesFormatter(JsonFormatter, _Redacting):
    """One JSON object a line: time, level, logger, message, the resource and every extra field."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[*_STANDARD, *_KOPF_PRIVATE, _FIELDS],
            datefmt="%Y-%m-%dT%H:%M:%SZ",
        )

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.update(getattr(record, _FIELDS, {}))
        resource = _object(record)
        if resource:
            log_record["resource"] = resource

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class _QuietHandlers(logging.Filter):
    def __init__(self, handler_ids: Iterable[str]) -> None:
        super().__init__()
        self.lines = frozenset(f"Handler '{handler_id}' succeeded." for handler_id in handler_ids)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno <= logging.INFO and record.name == "kopf.objects" and record.msg in self.lines
        )


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(char in text for char in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def configure_logging(
    *,
    log_format: str = "text",
    level: str = "info",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    quiet_handlers: Iterable[str] = (),
) -> logging.Handler:
    """Route every log record to `stream` (stderr) in the chosen format; returns the handler.

    `secrets` (the client secret, ...) are replaced by [REDACTED] wherever they would appear.
    `quiet_handlers`: kopf handler ids whose "succeeded" lines are dropped unless at debug (the
    handlers that run for every namespace or binding event in the cluster would drown the rest).
    Replaces a handler installed by an earlier call, so calling it twice does not double lines.
    """
    formatter: _Redacting = JsonLinesFormatter() if log_format == "json" else TextFormatter()
    # Short strings would redact ordinary words; real secrets are long.
    formatter.secrets = tuple(secret for secret in secrets if secret and len(secret) >= 6)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("entra-rbac")
    if level != "debug":
        handler.addFilter(_QuietHandlers(quiet_handlers))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "entra-rbac"]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    return handler
