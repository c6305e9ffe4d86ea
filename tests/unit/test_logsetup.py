"""Log lines: Kubernetes-like text with key=value fields, or JSON lines; secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from entra_rbac.logsetup import configure_logging, fields

SECRET = "s3cret-Value~123"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(log_format: str) -> str:
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="info", secrets=[SECRET, None], stream=stream)
    logger = logging.getLogger("entra_rbac.test")
    logger.info("Created RoleBinding", extra=fields(namespace="payments", name="egb:team:clusterrole:edit"))
    logger.warning("Token request with %s failed", SECRET, extra={"k8s_ref": {"name": "team-a"}})
    logger.debug("not shown at info")
    return stream.getvalue()


def test_text_lines_read_like_kubernetes_with_key_value_fields(restore_root: None) -> None:
    lines = emit("text").splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "INFO    entra_rbac.test Created RoleBinding namespace=payments name=egb:team:clusterrole:edit"
    )
    assert "resource=team-a" in lines[1]


def test_json_lines_carry_message_and_fields(restore_root: None) -> None:
    records = [json.loads(line) for line in emit("json").splitlines()]
    assert records[0]["message"] == "Created RoleBinding"
    assert records[0]["level"] == "INFO"
    assert (records[0]["namespace"], records[0]["name"]) == ("payments", "egb:team:clusterrole:edit")
    assert records[1]["resource"] == "team-a"
    assert "k8s_ref" not in records[1]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_redacted_in_every_format(restore_root: None, log_format: str) -> None:
    output = emit(log_format)
    assert SECRET not in output
    assert "[REDACTED]" in output


def test_configuring_twice_does_not_duplicate_lines(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(stream=io.StringIO())
    configure_logging(stream=stream)
    logging.getLogger("entra_rbac.test").warning("Once")
    assert stream.getvalue().count("Once") == 1


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_per_event_handler_successes_are_quiet_unless_debugging(
    restore_root: None, level: str, shown: bool
) -> None:
    stream = io.StringIO()
    configure_logging(level=level, stream=stream, quiet_handlers=["namespace_event"])
    kopf_log = logging.getLogger("kopf.objects")
    kopf_log.info("Handler 'namespace_event' succeeded.")
    kopf_log.info("Handler 'reconcile' succeeded.")
    kopf_log.error("Handler 'namespace_event' failed with an exception.")
    output = stream.getvalue()
    assert ("'namespace_event' succeeded" in output) is shown
    assert "'reconcile' succeeded" in output
    assert "'namespace_event' failed" in output
