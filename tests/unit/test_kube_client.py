"""The token refresh hook of the client's configuration, run at most once per interval."""

from __future__ import annotations

import pytest
from kubernetes import client

from entra_rbac.adapters.kube import client as kube_client


def test_throttled_hook_runs_once_per_interval_and_again_after_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr(kube_client, "_clock", lambda: now[0])
    calls: list[float] = []
    failing = [True]

    def hook(_: client.Configuration) -> None:
        calls.append(now[0])
        if failing[0]:
            raise RuntimeError("exec plugin failed")

    refresh = kube_client.throttled(hook, 1.0)
    configuration = client.Configuration()
    with pytest.raises(RuntimeError):
        refresh(configuration)
    failing[0] = False
    refresh(configuration)  # the failure counted for nothing: run again at once
    refresh(configuration)
    now[0] = 0.9
    refresh(configuration)
    assert calls == [0.0, 0.0]
    now[0] = 1.0
    refresh(configuration)
    assert calls == [0.0, 0.0, 1.0]
