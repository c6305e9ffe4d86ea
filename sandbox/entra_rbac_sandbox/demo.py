"""`entra-rbac demo`: the product end to end on the local sandbox, for someone seeing it first.

Holds the demo's script: start the sandbox (API server, Entra directory, the operator as its own
least-privileged process) on a copy of `examples/directory.yaml`, apply the examples with kubectl,
show the bindings and a who-can-do-what table, then change the directory three ways (a rename, a
member removed, a group deleted) and show the cluster following, and a break-glass grant ending on
time; finally install the escalation guard from deploy/ and show a team lead without `bind`
refused, then accepted once given it (`demo_guard`). Alice signs in for real along
the way (`kubectl --context alice`: the sandbox kubeconfig's context whose exec plugin,
`entra-rbac token`, gets her an Entra token from the directory): refused before the examples,
allowed after them, refused again once she has left the group and signs in anew. Every wait polls a condition
against a deadline; a missed deadline ends the demo with a clear message and the operator's log.
It must not import the operator's layers: the operator is a separate process, as in a cluster;
the demo sees it only through kubectl and the API server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from entra_rbac.constants import OWNER_UID_LABEL
from entra_rbac_sandbox import demo_access as access
from entra_rbac_sandbox import demo_guard
from entra_rbac_sandbox.launcher import Sandbox, kubectl_path, project_file

T = TypeVar("T")
MANAGED = "app.kubernetes.io/managed-by=entra-rbac-operator"
# Short cadence so that each directory change is followed within a few seconds: a deleted group
# is confirmed by a second read 3 s later (60 s by default, against Entra's replication blips).
OPERATOR_ENV = {
    "ENTRA_RBAC_REFRESH_INTERVAL": "2s",
    "ENTRA_RBAC_DELETION_CONFIRMATION": "3s",
}
# Deliberately not Ready besides suspended ones: a display name two groups share (Ambiguous).
AMBIGUOUS = ("developers",)
ROOT = project_file("examples").parent  # kubectl runs here, so the commands shown read as typed
TIMEOUT = 30.0  # per step: the operator follows within a refresh interval (2 s) or two
# The directory changes of step 4 (ids from examples/directory.yaml).
PAYMENTS_DEVELOPERS = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
AUDITORS = "a0d17000-0000-4000-8000-000000000012"
ALICE = "a11ce000-0000-4000-8000-000000000001"
NEW_NAME = "Payments Engineers"
PLATFORM_ADMINS = "9a7f0000-0000-4000-8000-000000000011"
ADMIN_BINDING = "RoleBinding payments/egb:payments-break-glass:clusterrole:admin"
BREAK_GLASS_SECONDS = 3  # the demo's window: short, the point is that it ends on time
# Alice's own kubectl context (the sandbox kubeconfig has one per directory user) and her question.
ALICE_GET_PODS = ("--context", "alice", "get", "pods", "-n", "payments")
ALICE_DEADLINE = 10.0  # seconds for her answer to be the expected one (RBAC is read at each request)


class DemoFailed(Exception):
    """A step did not complete (a deadline passed, a command failed): the demo stops."""


class Demo:
    """One run: the sandbox, an admin client, the directory copy, and the previous access table."""

    def __init__(self, sandbox: Sandbox, log_path: Path) -> None:
        self.sandbox = sandbox
        self.log_path = log_path
        self.api = sandbox.admin_client()
        self.custom = client.CustomObjectsApi(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.answers: access.Answers | None = None
        self.changed_at = time.monotonic()

    # --- plumbing ---------------------------------------------------------------------------

    def kubectl(self, *args: str, show: bool = True) -> str:
        """Run kubectl as the admin, printing the command and its output; fail if it fails."""
        command = [kubectl_path(), "--kubeconfig", str(self.sandbox.kubeconfig), *args]
        if show:
            print(f"$ kubectl {' '.join(args)}", flush=True)
        process = subprocess.Popen(  # noqa: S603 - kubectl with our arguments
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # Poll rather than block, so that an operator that died fails the demo at once.
        try:
            outputs = self.wait_for(f"kubectl {args[0]}", lambda: _finished(process), TIMEOUT + 30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        stdout, stderr = outputs
        if process.returncode != 0:
            raise DemoFailed(f"kubectl {' '.join(args)} failed:\n{indent((stderr or stdout).strip())}")
        if show:
            print(indent(stdout))
        return stdout

    def as_alice(self, *, allowed: bool) -> None:
        """`kubectl --context alice get pods -n payments` with her Entra token; fail unless `allowed`."""
        print(f"$ kubectl {' '.join(ALICE_GET_PODS)}", flush=True)
        command = [kubectl_path(), "--kubeconfig", str(self.sandbox.kubeconfig), *ALICE_GET_PODS]

        def answered() -> subprocess.CompletedProcess[str] | None:
            done = subprocess.run(  # noqa: S603 - kubectl with our arguments
                command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
            if done.returncode != 0 and "(Forbidden)" not in done.stderr:
                raise DemoFailed(f"kubectl {' '.join(ALICE_GET_PODS)} failed:\n{indent(done.stderr.strip())}")
            return done if (done.returncode == 0) == allowed else None

        what = f"alice to be {'allowed' if allowed else 'refused'}"
        done = self.wait_for(what, answered, ALICE_DEADLINE)
        print(indent((done.stdout + done.stderr).strip()))

    def forget_alice_token(self) -> None:
        """Empty the exec plugin's token cache: alice's next kubectl call signs her in again."""
        for cached in (self.sandbox.state_dir / "tokens").glob("*.json"):
            cached.unlink()

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = TIMEOUT) -> T:
        """Poll `probe` until it returns something truthy, or fail naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            process = self.sandbox.process
            if process is not None and process.poll() is not None:
                raise DemoFailed(
                    f"the operator exited with code {process.returncode} while waiting for {what}"
                )
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)

    def directory(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.sandbox.entra.directory_file.read_text(encoding="utf-8"))
        return dict(loaded or {})

    def egb(self, name: str) -> dict[str, Any]:
        found: Any = self.custom.get_cluster_custom_object(
            "entra-rbac.io", "v1alpha1", "entragroupbindings", name
        )
        return dict(found)

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        resource = self.egb(name)
        status = resource.get("status") or {}
        if status.get("observedGeneration") != resource["metadata"]["generation"]:
            return {}
        return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})

    def managed_bindings(self, selector: str = MANAGED) -> dict[str, Any]:
        """The managed bindings by `Kind namespace/name`, as the API server holds them."""
        found: dict[str, Any] = {}
        cluster_wide: list[Any] = self.rbac.list_cluster_role_binding(label_selector=selector).items
        namespaced: list[Any] = self.rbac.list_role_binding_for_all_namespaces(label_selector=selector).items
        for item in cluster_wide:
            found[f"ClusterRoleBinding {item.metadata.name}"] = item
        for item in namespaced:
            found[f"RoleBinding {item.metadata.namespace}/{item.metadata.name}"] = item
        return found

    def owned_by(self, owner: str) -> dict[str, Any]:
        """The managed bindings of one EntraGroupBinding, found by its owner-uid label."""
        uid = self.egb(owner)["metadata"]["uid"]
        return self.managed_bindings(f"{MANAGED},{OWNER_UID_LABEL}={uid}")

    def access_table(self, title: str, *, table: bool = True) -> None:
        """Ask the API server again; print the table (or only what changed since the last one)."""
        who = access.principals(self.directory())
        answers = access.review(self.api, who)
        if table:
            print(f"{title} (SubjectAccessReviews as each principal, with its transitive Entra groups):")
            print(indent(access.render(who, answers, self.answers)))
        if self.answers is not None:
            changed = access.changes(who, answers, self.answers)
            print("Changed:" if changed else "No access changed (every SubjectAccessReview asked again).")
            if changed:
                print(indent("\n".join(changed)))
        self.answers = answers

    # --- the steps --------------------------------------------------------------------------

    def alice_refused(self) -> None:
        print("Alice signs in with her own context (an Entra token from the directory, no impersonation):")
        self.kubectl("--context", "alice", "auth", "whoami")
        self.as_alice(allowed=False)

    def apply_examples(self) -> None:
        heading(2, "Apply the examples with kubectl and wait for the operator")
        # The files kustomization.yaml lists, in its order (namespaces first), one -f each.
        kustomization = yaml.safe_load(
            project_file("examples", "kustomization.yaml").read_text(encoding="utf-8")
        )
        files = [str(name) for name in kustomization["resources"]]
        self.kubectl("apply", *(arg for name in files for arg in ("-f", f"examples/{name}")))
        resources = [
            doc
            for name in files
            for doc in yaml.safe_load_all(project_file("examples", name).read_text(encoding="utf-8"))
            if doc and doc.get("kind") == "EntraGroupBinding"
        ]
        names = sorted(doc["metadata"]["name"] for doc in resources)
        not_ready = sorted(
            {*AMBIGUOUS, *(doc["metadata"]["name"] for doc in resources if doc["spec"].get("suspend"))}
        )
        ready = [f"egb/{name}" for name in names if name not in not_ready]
        self.kubectl("wait", "--for=condition=Ready", *ready, f"--timeout={TIMEOUT:.0f}s")
        print("Deliberately not Ready (their condition says why):")
        for name in not_ready:
            found = self.wait_for(f"{name} to report its Ready condition", partial(self.condition, name))
            print(indent(f"{name}: {describe(found)}"))
        print()
        self.kubectl("get", "egb", "-o", "wide")
        self.kubectl("get", "rolebindings,clusterrolebindings", "-A", "-l", MANAGED)

    def initial_access(self) -> None:
        heading(3, "Who can do what")
        self.access_table("Access")
        print("Alice, with the token she signed in with before the examples were applied:")
        self.as_alice(allowed=True)

    def rename(self) -> None:
        heading(4, f"a. Rename the group 'Payments Developers' to '{NEW_NAME}' in Entra")
        before = {key: item.metadata.resource_version for key, item in self.managed_bindings().items()}
        self.edit_group(PAYMENTS_DEVELOPERS, lambda group: group.update(displayName=NEW_NAME))

        def followed(name: str) -> str | None:
            groups = (self.egb(name).get("status") or {}).get("groups") or []
            return next((g["displayName"] for g in groups if g.get("displayName") == NEW_NAME), None)

        # Both resources naming the group (by display name and by id) have reconciled since.
        shown = self.wait_for(
            "payments-developers' status to show the new name", partial(followed, "payments-developers")
        )
        print(indent(f"payments-developers status.groups[0].displayName: 'Payments Developers' -> '{shown}'"))
        print(indent(f"(followed {self.since_change()})"))
        print(indent("(the spec still says displayName: Payments Developers: the group was pinned by id)"))
        self.wait_for("payments-oncall's status to show the new name", partial(followed, "payments-oncall"))
        after = {key: item.metadata.resource_version for key, item in self.managed_bindings().items()}
        if after != before:
            changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
            raise DemoFailed(f"a rename rewrote bindings it should not have touched: {', '.join(changed)}")
        print(indent(f"all {len(after)} managed bindings keep their resourceVersion: nothing was written"))
        self.access_table("Access now", table=False)

    def remove_member(self) -> None:
        heading(4, f"b. Remove Alice from '{NEW_NAME}' (payments-oncall binds its members as Users)")
        self.edit_group(PAYMENTS_DEVELOPERS, lambda group: group["members"].remove(ALICE))

        def subjects() -> dict[str, list[str]]:
            return {
                key: [s.name for s in item.subjects or []]
                for key, item in self.owned_by("payments-oncall").items()
            }

        before = subjects()

        def alice_gone() -> dict[str, list[str]] | None:
            now = subjects()
            gone = all("alice@contoso.com" not in names for names in now.values())
            return now if now and gone else None

        after = self.wait_for("alice@contoso.com to leave payments-oncall's RoleBindings", alice_gone)
        print(f"payments-oncall's User subjects, {self.since_change()}:")
        for key in sorted(after):
            removed = sorted(set(before.get(key, [])) - set(after[key]))
            print(indent(f"{key}: removed {', '.join(removed)}; kept {', '.join(after[key])}"))
        self.access_table("Access now")
        print("Alice's cached token still lists the group, which payments-developers binds as a Group:")
        self.as_alice(allowed=True)
        print("(Group mode: that lasts until her token expires. She signs in again: her token cache emptied)")
        self.forget_alice_token()
        self.as_alice(allowed=False)

    def delete_group(self) -> None:
        heading(4, "c. Delete the group 'Auditors' from Entra")
        before = sorted(self.owned_by("auditors"))
        document = self.directory()
        document["groups"] = [g for g in document["groups"] if g["id"] != AUDITORS]
        for group in document["groups"]:  # a deleted group also leaves the groups it was nested in
            group["members"] = [m for m in group.get("members") or [] if m != AUDITORS]
        self.write_directory(document)

        def revoked() -> dict[str, Any] | None:
            found = self.condition("auditors")
            return found if found.get("reason") == "GroupNotFound" and not self.owned_by("auditors") else None

        found = self.wait_for("auditors to report GroupNotFound with its bindings removed", revoked)
        print(f"Revoked {self.since_change()}:")
        print(indent(f"auditors: {describe(found)}"))
        print(indent(f"removed: {', '.join(before) or 'nothing'}"))

        def other_group_kept() -> dict[str, Any] | None:
            found = self.condition("auditors-oidc")
            subjects = [
                s.name for item in self.owned_by("auditors-oidc").values() for s in item.subjects or []
            ]
            kept = found.get("reason") == "GroupNotFound" and f"oidc:{AUDITORS}" not in subjects and subjects
            return {**found, "subjects": subjects} if kept else None

        found = self.wait_for(
            "auditors-oidc to lose the Auditors group and keep its other one", other_group_kept
        )
        print(indent(f"auditors-oidc: {describe(found)}"))
        print(indent(f"auditors-oidc keeps its other group's subject: {', '.join(found['subjects'])}"))
        self.access_table("Access now")

    def grant_expires(self) -> None:
        heading(4, "d. A break-glass grant: admin in payments for a few seconds, then gone on time")
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=BREAK_GLASS_SECONDS)
        window = {"validUntil": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
        body = {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": "payments-break-glass"},
            "spec": {
                "groups": [{"id": PLATFORM_ADMINS}],
                "roleBindings": [
                    {"clusterRole": "admin", "namespaces": ["payments"], **window},
                    {"clusterRole": "view", "namespaces": ["payments"]},
                ],
            },
        }
        print(f"payments-break-glass (examples/09) now grants admin until {window['validUntil']}:")
        self.custom.patch_cluster_custom_object(
            "entra-rbac.io", "v1alpha1", "entragroupbindings", "payments-break-glass", body
        )

        def admin_bound() -> bool:
            return ADMIN_BINDING in self.owned_by("payments-break-glass")

        self.wait_for("the admin grant to be bound", admin_bound)
        self.kubectl("get", "egb", "payments-break-glass")
        self.wait_for("the admin grant to end", lambda: not admin_bound(), BREAK_GLASS_SECONDS + TIMEOUT)
        late = (datetime.now(UTC) - until).total_seconds()
        print(
            indent(
                f"admin's RoleBinding deleted {late:.1f}s after validUntil (view, without a window, stays)"
            )
        )
        self.kubectl(
            "get",
            "egb",
            "payments-break-glass",
            "-o",
            "jsonpath={range .status.grants[*]}{.grant} {.roleRef} until {.validUntil}: {.state}{end}",
        )
        print()

    def escalation_guard(self) -> None:
        heading(5, "The escalation guard: nobody borrows the operator's bind")
        demo_guard.escalation_guard(self, self.sandbox.state_dir)

    def edit_group(self, group_id: str, change: Callable[[dict[str, Any]], object]) -> None:
        document = self.directory()
        change(next(g for g in document["groups"] if g["id"] == group_id))
        self.write_directory(document)

    def write_directory(self, document: dict[str, Any]) -> None:
        """Replace the sandbox directory (the Entra server serves it at once) and note when."""
        self.sandbox.entra.write_directory(document)
        self.changed_at = time.monotonic()

    def since_change(self) -> str:
        return f"{time.monotonic() - self.changed_at:.1f}s after the directory changed"


def _finished(process: subprocess.Popen[str]) -> tuple[str, str] | None:
    try:
        return process.communicate(timeout=0.1)
    except subprocess.TimeoutExpired:
        return None


def describe(condition: dict[str, Any]) -> str:
    return f"Ready={condition.get('status')} {condition.get('reason')}: {condition.get('message')}"


def heading(step: int, title: str) -> None:
    print(f"\n== {step}. {title}\n", flush=True)


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.rstrip("\n").splitlines())


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def run_demo(state_dir: Path) -> None:
    heading(1, "Start the sandbox: a local API server, a local Entra directory and the operator")
    directory = state_dir / "directory.yaml"
    shutil.copyfile(project_file("examples", "directory.yaml"), directory)
    log_path = state_dir / "operator.log"
    with (
        log_path.open("w", encoding="utf-8") as log,
        Sandbox(
            directory, state_dir=state_dir / "sandbox", operator_env=OPERATOR_ENV, operator_output=log
        ) as sandbox,
    ):
        print(indent(sandbox.ready_line()))
        print(indent(f"directory (a copy of examples/directory.yaml): {directory}"))
        print(indent(f"operator log: {log_path}"))
        print(indent("kubectl below runs as the sandbox's admin: --kubeconfig <the kubeconfig above>"))
        demo = Demo(sandbox, log_path)
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("1 (alice is refused)", demo.alice_refused),
            ("2 (apply the examples)", demo.apply_examples),
            ("3 (who can do what)", demo.initial_access),
            ("4a (rename a group)", demo.rename),
            ("4b (remove a member)", demo.remove_member),
            ("4c (delete a group)", demo.delete_group),
            ("4d (a grant expires on time)", demo.grant_expires),
            ("5 (the escalation guard)", demo.escalation_guard),
        )
        try:
            for name, step in steps:
                try:
                    step()
                except (DemoFailed, client.exceptions.ApiException) as error:
                    last = f"operator log ({log_path}), last lines:\n{tail(log_path)}"
                    raise DemoFailed(f"step {name}: {error}\n\n{last}") from None
        finally:
            demo.api.close()  # type: ignore[no-untyped-call]
        heading(6, "Stop the operator and the sandbox")


def main() -> int:
    """Run the demo; 0 when every step completed, 1 (with the reason) when one did not."""
    started = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="entra-rbac-demo-"))
    try:
        run_demo(state_dir)
    except KeyboardInterrupt:
        print(f"\ndemo interrupted; everything stopped (state kept in {state_dir})", file=sys.stderr)
        return 130
    except (DemoFailed, OSError, client.exceptions.ApiException) as error:  # OSError: TimeoutError too
        print(f"\ndemo FAILED: {error}\n(state kept in {state_dir})", file=sys.stderr)
        return 1
    shutil.rmtree(state_dir, ignore_errors=True)  # kept on failure, for its operator log
    print(f"Done in {time.monotonic() - started:.1f}s: every step completed, everything stopped.")
    return 0
