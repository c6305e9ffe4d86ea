"""Per-resource memory: one record per uid, and one forget."""

from __future__ import annotations

from entra_rbac.core.naming import BindingKey
from entra_rbac.reconciler import ResourceMemory


def test_a_record_is_created_on_first_use_and_kept() -> None:
    memory = ResourceMemory()
    record = memory.of("u")
    record.foreign_names = frozenset({BindingKey.of("ClusterRoleBinding", None, "x")})
    assert memory.of("u") is record
    assert "u" in memory
    assert "v" not in memory


def test_forget_drops_everything_remembered() -> None:
    memory = ResourceMemory()
    memory.of("u").foreign_names = frozenset({BindingKey.of("ClusterRoleBinding", None, "x")})
    memory.forget("u")
    assert "u" not in memory
    assert memory.of("u").foreign_names == frozenset()
    memory.forget("never-seen")  # nothing to forget is no error


async def test_forget_keeps_a_record_whose_lock_is_held() -> None:
    """A reconcile still running (or waiting) must not find a second lock beside its own."""
    memory = ResourceMemory()
    lock = memory.of("u").lock
    async with lock:
        memory.forget("u")
        assert memory.of("u").lock is lock
    memory.forget("u")
    assert "u" not in memory
