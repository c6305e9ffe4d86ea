"""The sandbox store's indices and the authorizer's subject index agree with a full scan.

Pure: a Store and an Authorizer without a server. Random writes and removals; after each, the
kept sorted keys (lists in etcd order, from any continue key), the namespace index, the
dependents index and the authorizer's rules equal what a scan of every object gives (the scan
the indices replaced, docs/design.md, The sandbox contract).
"""

from __future__ import annotations

import random
from typing import Any

from entra_rbac_sandbox.kube.rbac import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    Authorizer,
    UserInfo,
)
from entra_rbac_sandbox.kube.store import Store

CONFIGMAPS = ("", "configmaps")


def _scan_matches(subject: dict[str, Any], user: UserInfo, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace') or namespace}:{name}"
    return False


def _scan_rules(store: Store, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
    """rules_for as it was: every binding scanned, in storage order."""
    rules: list[dict[str, Any]] = []
    for key, ns in ((CLUSTER_ROLE_BINDINGS, ""), (ROLE_BINDINGS, namespace)):
        if key == ROLE_BINDINGS and not namespace:
            continue
        for binding in [b for b in store.list(key) if (b["metadata"].get("namespace") or "") == ns]:
            if any(_scan_matches(s, user, ns) for s in binding.get("subjects") or []):
                ref = binding["roleRef"]
                role = store.get(CLUSTER_ROLES, "", ref["name"])
                rules += list(role.get("rules") or []) if role else []
    return rules


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])


def test_indices_agree_with_a_scan() -> None:
    rng = random.Random(17)
    store = Store()
    authorizer = Authorizer(store)
    for i in range(3):
        store.put(
            CLUSTER_ROLES, {"metadata": {"name": f"r{i}", "uid": f"role-{i}"}, "rules": [{"verbs": [str(i)]}]}
        )
    subjects = [
        {"kind": "User", "name": "alice"},
        {"kind": "Group", "name": "team"},
        {"kind": "ServiceAccount", "name": "sa"},
        {"kind": "ServiceAccount", "name": "sa", "namespace": "ns1"},
        {"kind": "User", "name": "system:serviceaccount:ns0:sa"},
        {"kind": "Other", "name": "alice"},
    ]
    users = [
        UserInfo("alice"),
        UserInfo("bob", ("team",)),
        UserInfo("system:serviceaccount:ns0:sa"),
        UserInfo("system:serviceaccount:ns1:sa", ("team",)),
    ]
    owners = [f"owner-{i}" for i in range(4)]
    shadow: dict[tuple[Any, str, str], dict[str, Any]] = {}  # what is stored, kept by the test
    for step in range(200):
        namespace = rng.choice(["ns0", "ns1", "ns2"])
        name = f"b{rng.randrange(12)}"
        key = rng.choice([ROLE_BINDINGS, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS, CONFIGMAPS])
        ns = "" if key == CLUSTER_ROLE_BINDINGS else namespace
        existing = store.get(key, ns, name)
        if existing is not None and rng.random() < 0.4:
            store.remove(key, existing)
            del shadow[(key, ns, name)]
        else:
            meta: dict[str, Any] = {"name": name, "uid": f"uid-{step}"}
            if ns:
                meta["namespace"] = ns
            if rng.random() < 0.5:
                meta["ownerReferences"] = [{"uid": u} for u in rng.sample(owners, rng.randrange(1, 3))]
            obj: dict[str, Any] = {"metadata": meta}
            if key != CONFIGMAPS:
                obj["roleRef"] = {"kind": "ClusterRole", "name": f"r{rng.randrange(3)}"}
                obj["subjects"] = rng.sample(subjects, rng.randrange(0, 3))
            shadow[(key, ns, name)] = store.put(key, obj)
        for kind in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS, CONFIGMAPS):
            ordered = [shadow[k] for k in sorted(k for k in shadow if k[0] == kind)]
            assert store.list(kind) == ordered  # etcd key order, from the kept sorted keys
            for after in (None, ("ns1", ""), ("ns1", "b5"), ("", "b3"), ("ns2", "b9"), ("zz", "")):
                expected = [o for o in ordered if after is None or _key(o) > after]
                assert list(store.iterate(kind, None, after)) == expected
                assert store.count_after(kind, None, after) == len(expected)
                for listed_ns in ("ns0", "ns1"):
                    in_ns = [o for o in expected if o["metadata"].get("namespace") == listed_ns]
                    assert list(store.iterate(kind, listed_ns, after)) == in_ns
        for kind in (ROLE_BINDINGS, CONFIGMAPS):
            for listed_ns in ("ns0", "ns1", "ns2"):
                scanned = [o for o in store.list(kind) if o["metadata"].get("namespace") == listed_ns]
                assert store.list(kind, listed_ns) == scanned
        for owner in owners:
            scanned_deps = sorted(
                (k, o["metadata"]["name"])
                for k in store.keys_list()
                for o in store.list(k)
                if any(r["uid"] == owner for r in o["metadata"].get("ownerReferences") or [])
            )
            assert sorted((k, o["metadata"]["name"]) for k, o in store.dependents(owner)) == scanned_deps
        for user in users:
            for rules_ns in ("", "ns0", "ns1"):
                assert authorizer.rules_for(user, rules_ns) == _scan_rules(store, user, rules_ns)


def test_gc_candidates_are_written_dependents_and_orphans() -> None:
    store = Store()
    owner = store.put(CONFIGMAPS, {"metadata": {"name": "owner", "namespace": "a", "uid": "o"}})
    assert store.take_gc_candidates() == []  # no owners, not deleting: nothing to look at
    dependent = {"metadata": {"name": "dep", "namespace": "a", "uid": "d", "ownerReferences": [{"uid": "o"}]}}
    store.put(CONFIGMAPS, dependent)
    assert [o["metadata"]["name"] for _, o in store.take_gc_candidates()] == ["dep"]
    assert store.take_gc_candidates() == []  # taken
    store.remove(CONFIGMAPS, owner)
    assert [o["metadata"]["name"] for _, o in store.take_gc_candidates()] == ["dep"]  # its owner went
    deleting = {"metadata": {"name": "x", "namespace": "a", "uid": "x", "deletionTimestamp": "now"}}
    store.put(CONFIGMAPS, deleting)
    assert [o["metadata"]["name"] for _, o in store.take_gc_candidates()] == ["x"]
    assert [o["metadata"]["name"] for _, o in store.take_gc_candidates()] == ["x"]  # until it goes
    assert {o["metadata"]["name"] for _, o in store.take_gc_candidates(everything=True)} == {"dep", "x"}


def test_events_since_reads_back_from_the_newest() -> None:
    store = Store(history_size=5)
    for i in range(8):
        store.put(CONFIGMAPS, {"metadata": {"name": f"c{i % 3}", "namespace": "a", "uid": str(i)}})
    retained = [2 + i for i in range(8)][-5:]  # rv 2..9 written, the last 5 kept
    for since in range(retained[0] - 1, retained[-1] + 2):
        assert [e.rv for e in store.events_since(CONFIGMAPS, since)] == [r for r in retained if r > since]
