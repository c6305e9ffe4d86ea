"""The sandbox tenant: the directory YAML file (docs/design.md, The sandbox contract), parsed, validated
and watched.

Holds the file's schema (pydantic, so a bad file gets errors naming the field), the in-memory
`Directory` (objects by id, direct members, transitive expansion) and `DirectoryFile`, which
re-reads the file when it changes and keeps serving the last good version when a new one is
malformed. Knows nothing of HTTP, OData or tokens.

File format (every list optional; unknown keys are errors):
    users:             [{id, userPrincipalName, userType: Member|Guest, displayName, mail,
                         accountEnabled, password}]
    servicePrincipals: [{id, appId, displayName,
                         servicePrincipalType: Application|ManagedIdentity, clientSecret}]
    devices:           [{id, displayName}]
    orgContacts:       [{id, displayName, mail}]
    groups:            [{id, displayName, mailNickname, description, securityEnabled,
                         mailEnabled, members: [ids of users, groups, service principals,
                         devices or contacts], deleted: false}]
    signIn:            {testSecret, applications: [cluster application ids]}
Ids are GUIDs (kept lower-case) and unique across the file; a member id must name an object in
the file. A group with `deleted: true` is gone from Graph (404, absent from lists and member
expansions) until the flag is removed: that is how tests delete and restore the same id.

Sign-in (the sandbox as an OIDC issuer, `oidc.py`): a user's `password`, or `signIn.testSecret`
for every user, is what the password grant accepts; a service principal's `clientSecret` is what
its client-credentials grant for a cluster application accepts. `signIn.applications` adds
cluster application ids (token audiences) to the server's own. Secrets never reach Graph.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

ObjectKind = Literal["user", "group", "servicePrincipal", "device", "orgContact"]


class DirectoryFileError(ValueError):
    """The directory file cannot be used; the message names the file and the field."""


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"must be a GUID, got {value!r}") from None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str

    @field_validator("id")
    @classmethod
    def _id_is_guid(cls, value: str) -> str:
        return _guid(value)


class UserEntry(_Entry):
    userPrincipalName: str = Field(min_length=1)
    userType: Literal["Member", "Guest"] = "Member"
    displayName: str | None = None
    mail: str | None = None
    accountEnabled: bool = True
    password: str | None = Field(default=None, min_length=1)


class ServicePrincipalEntry(_Entry):
    appId: str
    displayName: str = Field(min_length=1)
    servicePrincipalType: Literal["Application", "ManagedIdentity"] = "Application"
    clientSecret: str | None = Field(default=None, min_length=1)

    @field_validator("appId")
    @classmethod
    def _app_id_is_guid(cls, value: str) -> str:
        return _guid(value)


class DeviceEntry(_Entry):
    displayName: str = Field(min_length=1)


class OrgContactEntry(_Entry):
    displayName: str = Field(min_length=1)
    mail: str | None = None


class GroupEntry(_Entry):
    displayName: str = Field(min_length=1, max_length=256)
    mailNickname: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = None
    securityEnabled: bool = True
    mailEnabled: bool = False
    members: list[str] = Field(default_factory=list)
    deleted: bool = False

    @field_validator("members")
    @classmethod
    def _members_are_guids(cls, values: list[str]) -> list[str]:
        return [_guid(value) for value in values]


class SignInSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    testSecret: str | None = Field(default=None, min_length=8)
    applications: list[str] = Field(default_factory=list)

    @field_validator("applications")
    @classmethod
    def _applications_are_guids(cls, values: list[str]) -> list[str]:
        return [_guid(value) for value in values]


class DirectoryDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[UserEntry] = Field(default_factory=list)
    servicePrincipals: list[ServicePrincipalEntry] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)
    orgContacts: list[OrgContactEntry] = Field(default_factory=list)
    groups: list[GroupEntry] = Field(default_factory=list)
    signIn: SignInSettings = Field(default_factory=SignInSettings)


# Fields of the file that are credentials, not Graph properties.
_SECRETS = {"password", "clientSecret"}


@dataclass(frozen=True)
class DirectoryObject:
    """One object as Graph shows it: `properties` is its JSON (id included)."""

    id: str
    kind: ObjectKind
    properties: dict[str, Any]
    deleted: bool = False

    @property
    def odata_type(self) -> str:
        return f"#microsoft.graph.{self.kind}"


@dataclass
class Directory:
    """A parsed tenant; read-only once built."""

    objects: dict[str, DirectoryObject] = field(default_factory=dict)
    group_ids: list[str] = field(default_factory=list)  # file order
    direct_members: dict[str, list[str]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # object id -> password / client secret
    sign_in: SignInSettings = field(default_factory=SignInSettings)
    # Transitive member lists already walked: the directory never changes once built (a new file
    # is a new Directory), and each page of a 50,000-member group asked for the whole walk again.
    _transitive: dict[str, list[DirectoryObject]] = field(default_factory=dict, repr=False)

    def get(self, object_id: str) -> DirectoryObject | None:
        """The live object with this id (case-insensitive), or None when absent or deleted."""
        found = self.objects.get(object_id.lower())
        return None if found is None or found.deleted else found

    def groups(self) -> list[DirectoryObject]:
        return [g for g in (self.get(i) for i in self.group_ids) if g is not None]

    def members(self, group_id: str) -> list[DirectoryObject]:
        """Direct members that exist (deleted nested groups are gone)."""
        found = (self.get(i) for i in self.direct_members.get(group_id.lower(), []))
        return [m for m in found if m is not None]

    def transitive_members(self, group_id: str) -> list[DirectoryObject]:
        """Members of the group and of every nested group, each once; cycles are harmless.
        Walked once per group and directory (the list is shared: callers never change it)."""
        key = group_id.lower()
        if key not in self._transitive:
            self._transitive[key] = self._walk(key)
        return self._transitive[key]

    def _walk(self, group_id: str) -> list[DirectoryObject]:
        seen_groups = {group_id.lower()}
        seen: dict[str, DirectoryObject] = {}
        queue = [group_id.lower()]
        while queue:
            for member in self.members(queue.pop(0)):
                if member.id not in seen:
                    seen[member.id] = member
                if member.kind == "group" and member.id not in seen_groups:
                    seen_groups.add(member.id)
                    queue.append(member.id)
        seen.pop(group_id.lower(), None)  # a group that nests itself is not its own member
        return list(seen.values())

    def member_of(self, object_id: str, *, security_only: bool = True) -> list[str]:
        """Ids of the live groups the object is in, directly or through nesting (file order)."""
        found = []
        for group in self.groups():
            if security_only and not group.properties.get("securityEnabled", True):
                continue
            if any(m.id == object_id.lower() for m in self.transitive_members(group.id)):
                found.append(group.id)
        return found

    def find_user(self, name: str) -> DirectoryObject | None:
        """The user whose userPrincipalName (case-insensitive) or id is `name`."""
        wanted = name.lower()
        for obj in self.objects.values():
            if obj.kind == "user" and wanted in (obj.id, str(obj.properties["userPrincipalName"]).lower()):
                return obj
        return None

    def find_app(self, app_id: str) -> DirectoryObject | None:
        """The service principal (or managed identity) with this appId."""
        wanted = app_id.lower()
        for obj in self.objects.values():
            if obj.kind == "servicePrincipal" and obj.properties["appId"] == wanted:
                return obj
        return None


def parse_directory(data: object, source: str = "directory") -> Directory:
    """Validate a loaded YAML document and build the Directory; raises DirectoryFileError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DirectoryFileError(f"{source}: the top level must be a mapping with users, groups, ...")
    try:
        document = DirectoryDocument.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise DirectoryFileError(f"{source}: {where}: {first['msg']}{more}") from None
    directory = Directory(sign_in=document.signIn)
    for kind, entries, section in _sections(document):
        for index, entry in enumerate(entries):
            if entry.id in directory.objects:
                raise DirectoryFileError(f"{source}: {section}[{index}].id: {entry.id} is used twice")
            properties = entry.model_dump(exclude={"members", "deleted", *_SECRETS}, exclude_none=True)
            secret = getattr(entry, "password", None) or getattr(entry, "clientSecret", None)
            if secret is not None:
                directory.secrets[entry.id] = secret
            deleted = isinstance(entry, GroupEntry) and entry.deleted
            directory.objects[entry.id] = DirectoryObject(entry.id, kind, properties, deleted)
    for index, group in enumerate(document.groups):
        directory.group_ids.append(group.id)
        directory.direct_members[group.id] = list(dict.fromkeys(group.members))
        for position, member in enumerate(group.members):
            if member not in directory.objects:
                raise DirectoryFileError(
                    f"{source}: groups[{index}].members[{position}]: no object in the file has id {member}"
                )
    return directory


def _sections(document: DirectoryDocument) -> Iterator[tuple[ObjectKind, list[Any], str]]:
    yield "user", document.users, "users"
    yield "servicePrincipal", document.servicePrincipals, "servicePrincipals"
    yield "device", document.devices, "devices"
    yield "orgContact", document.orgContacts, "orgContacts"
    yield "group", document.groups, "groups"


def _with_graph_defaults(directory: Directory) -> Directory:
    """Add the read-only properties Graph always has (users' displayName defaults to the UPN)."""
    for obj in directory.objects.values():
        if obj.kind == "user":
            obj.properties.setdefault("displayName", obj.properties["userPrincipalName"])
        if obj.kind == "group":
            obj.properties.setdefault("mailNickname", None)
            obj.properties.setdefault("description", None)
    return directory


# A file changed less than this long ago is hashed on every read: file timestamps are coarse
# (a few ms), so two quick writes of the same size can leave mtime and size unchanged.
_SETTLE_SECONDS = 2.0


class DirectoryFile:
    """The directory file, re-read whenever it changes; a bad version keeps the last good one.

    `current()` is cheap when nothing changed (one stat). `last_error` holds why the newest
    version on disk was refused (None when it was accepted). Thread-safe.
    """

    def __init__(self, path: Path | str, *, settle_seconds: float = _SETTLE_SECONDS) -> None:
        self.path = Path(path)
        self.settle_seconds = settle_seconds
        self.last_error: str | None = None
        self.loads = 0  # how many versions were accepted, for tests
        self._lock = threading.Lock()
        self._stat_key: tuple[int, int] | None = None
        self._digest: bytes | None = None
        self._directory: Directory | None = None
        directory = self._reload(force=True)
        if directory is None:
            raise DirectoryFileError(self.last_error or f"{self.path}: cannot be read")

    def current(self) -> Directory:
        with self._lock:
            found = self._reload(force=False)
        assert found is not None  # the constructor guaranteed one good version
        return found

    def _reload(self, *, force: bool) -> Directory | None:
        try:
            stat = self.path.stat()
        except OSError as error:
            return self._refuse(f"{self.path}: cannot be read: {error.strerror}")
        key = (stat.st_mtime_ns, stat.st_size)
        settled = time.time() - stat.st_mtime > self.settle_seconds
        if not force and key == self._stat_key and settled:
            return self._directory
        try:
            raw = self.path.read_bytes()
        except OSError as error:
            return self._refuse(f"{self.path}: cannot be read: {error.strerror}")
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest == self._digest and self._directory is not None:
            self._stat_key = key
            return self._directory
        try:
            directory = _with_graph_defaults(parse_directory(_load_yaml(raw, self.path), str(self.path)))
        except DirectoryFileError as error:
            # Remember the digest so one bad version is logged once, not on every request.
            self._digest = digest
            return self._refuse(str(error))
        self._stat_key, self._digest, self._directory = key, digest, directory
        self.last_error = None
        self.loads += 1
        if self.loads > 1:
            log.info("Reloaded the directory file %s (%d objects)", self.path, len(directory.objects))
        return directory

    def _refuse(self, message: str) -> Directory | None:
        if message != self.last_error:
            log.warning("Kept the last good directory: %s", message)
        self.last_error = message
        return self._directory


# libyaml's loader is about 5x faster; a 5,000-member tenant is a few MB of YAML.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(raw: bytes, path: Path) -> object:
    if not raw.strip():
        raise DirectoryFileError(f"{path}: the file is empty")
    try:
        return yaml.load(raw, Loader=_LOADER)  # noqa: S506 - a safe loader, in C when available
    except yaml.YAMLError as error:
        raise DirectoryFileError(f"{path}: not valid YAML: {error}") from None
