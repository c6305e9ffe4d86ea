"""`FileDirectory`: Entra read from a directory file, offline (`plan --directory FILE`).

The file has the sandbox's format (docs/design.md, The sandbox contract: `users`,
`servicePrincipals`, `devices`, `orgContacts`, `groups` with direct `members`, `deleted`); the
product never imports the sandbox, so this is the product's own small reader of it. It reads only
what a lookup needs and ignores the rest (sign-in secrets, descriptions). It implements the
`core.entra.Directory` protocol with the same decision rules as `EntraDirectory` (`names.py`:
exact, case-sensitive names; a deleted group is absent), so a plan made from the file is the one
the operator would make if Graph answered the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from entra_rbac.adapters.directory.names import name_of, resolve_by_id, resolve_by_name
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.errors import EntraRbacError, GroupNotFoundError

_SECTIONS: Mapping[str, MemberType] = {
    "users": MemberType.USER,
    "servicePrincipals": MemberType.SERVICE_PRINCIPAL,
    "devices": MemberType.DEVICE,
    "orgContacts": MemberType.ORG_CONTACT,
    "groups": MemberType.GROUP,
}


class DirectoryFileError(EntraRbacError):
    """The directory file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class _Object:
    member: DirectoryMember
    group: DirectoryGroup | None = None
    members: tuple[str, ...] = ()


class FileDirectory:
    """The groups and members of one directory file, read once."""

    def __init__(self, objects: Mapping[str, _Object]) -> None:
        self._objects = dict(objects)

    @classmethod
    def load(cls, path: Path) -> FileDirectory:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise DirectoryFileError(f"{path}: cannot be read: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise DirectoryFileError(f"{path}: not valid YAML: {error}") from None
        return cls.parse(document or {}, str(path))

    @classmethod
    def parse(cls, document: object, source: str = "directory") -> FileDirectory:
        if not isinstance(document, Mapping):
            raise DirectoryFileError(f"{source}: must be a mapping of users, groups, ...")
        objects: dict[str, _Object] = {}
        for section, kind in _SECTIONS.items():
            entries = document.get(section) or []
            if not isinstance(entries, list):
                raise DirectoryFileError(f"{source}: {section} must be a list")
            for index, entry in enumerate(entries):
                where = f"{source}: {section}[{index}]"
                found = _object(entry, kind, where)
                if found is None:
                    continue
                if found.member.id in objects:
                    raise DirectoryFileError(f"{where}.id: {found.member.id} is used twice")
                objects[found.member.id] = found
        return cls(objects)

    def invalidate(self, lookups: Sequence[GroupLookup] | None = None) -> None:
        """Nothing is cached: the file was read once."""

    async def lookup_groups(self, lookups: Sequence[GroupLookup]) -> list[GroupResolution]:
        groups = [o.group for o in self._objects.values() if o.group is not None]
        resolutions = []
        for lookup in lookups:
            key = lookup.ref.id or lookup.pinned_id
            if key:
                found = self._objects.get(key.lower())
                resolutions.append(resolve_by_id(lookup, key.lower(), found.group if found else None))
            else:
                field, value = name_of(lookup)
                # Graph's `eq` ignores case; `resolve_by_name` then compares exactly.
                near = [g for g in groups if (_name(g, field) or "").lower() == value.lower()]
                resolutions.append(resolve_by_name(lookup, near))
        return resolutions

    async def transitive_members(self, group_id: str) -> list[DirectoryMember]:
        start = self._objects.get(group_id.lower())
        if start is None or start.group is None:
            raise GroupNotFoundError(group_id.lower())
        seen: dict[str, DirectoryMember] = {}
        visited, queue = {start.member.id}, list(start.members)
        while queue:
            found = self._objects.get(queue.pop(0))
            if found is None:
                continue
            seen.setdefault(found.member.id, found.member)
            if found.group is not None and found.member.id not in visited:
                visited.add(found.member.id)
                queue.extend(found.members)
        seen.pop(start.member.id, None)  # a group nesting itself is not its own member
        return sorted(seen.values(), key=lambda m: m.id)


def _name(group: DirectoryGroup, field: str) -> str | None:
    return group.display_name if field == "displayName" else group.mail_nickname


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise DirectoryFileError(f"{where}.{key}: is required")
        return None
    if not isinstance(value, str) or not value:
        raise DirectoryFileError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    return value


def _object(entry: object, kind: MemberType, where: str) -> _Object | None:
    """One entry as a member (and, for a group, a group); None for a deleted group (gone from Graph)."""
    if not isinstance(entry, Mapping):
        raise DirectoryFileError(f"{where}: must be a mapping")
    object_id = (_text(entry, "id", where, required=True) or "").lower()
    if kind is MemberType.USER:
        upn = _text(entry, "userPrincipalName", where, required=True)
        user_type = _text(entry, "userType", where) or "Member"
        return _Object(DirectoryMember(object_id, kind, upn, user_type))
    member = DirectoryMember(object_id, kind)
    if kind is not MemberType.GROUP:
        return _Object(member)
    if entry.get("deleted") is True:
        return None
    members = entry.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise DirectoryFileError(f"{where}.members: must be a list of object ids")
    group = DirectoryGroup(
        id=object_id,
        display_name=_text(entry, "displayName", where, required=True) or "",
        mail_nickname=_text(entry, "mailNickname", where),
    )
    return _Object(member, group, tuple(m.lower() for m in members))
