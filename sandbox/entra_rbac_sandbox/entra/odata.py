"""The OData query subset the sandbox Graph understands: `$filter`, `$select`, `$top`.

Holds a small tokenizer and recursive-descent parser for `$filter` (written here because no
maintained Python library parses Graph's OData dialect into something we can evaluate) and the
parsing of `$select` / `$top`. Knows nothing of HTTP; errors are `ODataError` with Graph's code.

`$filter` grammar (Graph v1.0 on groups, as far as the operator and its tests need):
    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | call | comparison
    call       := ("startswith" | "endswith") "(" property "," literal ")"
    comparison := property ("eq" | "ne") literal | property "in" "(" literal ("," literal)* ")"
    literal    := 'string' (a ' inside is written '') | true | false | null
String comparisons are case-insensitive, as in the directory. `ne`, `not` and `endswith` are
advanced queries: they need `ConsistencyLevel: eventual` and `$count=true`, otherwise 400
`Request_UnsupportedQuery`. An `in` list holds at most 15 values; a literal at most 120 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_IN_VALUES = 15
MAX_LITERAL_LENGTH = 120
MAX_TOP = 999
DEFAULT_PAGE = 100

Predicate = Callable[[Mapping[str, Any]], bool]


class ODataError(ValueError):
    """A query Graph would refuse: 400 with `code` and `message`."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str  # "(", ")", ",", "string", "word", "end"
    value: str
    position: int


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./]*")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            tokens.append(Token(char, char, i))
            i += 1
        elif char == "'":
            start, chars = i, []
            i += 1
            while True:
                if i >= len(text):
                    raise ODataError(f"Invalid filter clause: unterminated string at position {start}.")
                if text[i] == "'":
                    if text[i + 1 : i + 2] == "'":  # '' is one quote inside a literal
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            tokens.append(Token("string", "".join(chars), start))
        else:
            match = _WORD.match(text, i)
            if match is None:
                raise ODataError(f"Invalid filter clause: syntax error at position {i} in '{text}'.")
            tokens.append(Token("word", match.group(), i))
            i = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class FilterParser:
    """Parses one `$filter` against the properties of one entity type into a predicate."""

    def __init__(self, text: str, properties: Mapping[str, type], entity: str, *, advanced: bool) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.properties = {name.lower(): (name, kind) for name, kind in properties.items()}
        self.entity = entity
        self.advanced = advanced
        self.index = 0

    def parse(self) -> Predicate:
        if self.tokens[0].kind == "end":
            raise ODataError("Invalid filter clause: the filter is empty.")
        predicate = self._or()
        if self._peek().kind != "end":
            self._fail(f"unexpected '{self._peek().value}'")
        return predicate

    # Grammar ---------------------------------------------------------------------------------

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: any(part(obj) for part in parts)

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: all(part(obj) for part in parts)

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            self._need_advanced("not")
            inner = self._unary()
            return lambda obj: not inner(obj)
        if self._peek().kind == "(":
            self._take("(")
            inner = self._or()
            self._take(")")
            return inner
        word = self._take("word")
        if word.value.lower() in ("startswith", "endswith") and self._peek().kind == "(":
            return self._call(word.value.lower())
        return self._comparison(word)

    def _call(self, function: str) -> Predicate:
        if function == "endswith":
            self._need_advanced("endsWith")
        self._take("(")
        name, kind = self._property(self._take("word"))
        self._take(",")
        needle = self._literal(kind, name)
        self._take(")")
        if kind is not str or not isinstance(needle, str):
            raise ODataError(f"Invalid filter clause: {function} needs a string property, not '{name}'.")
        folded = needle.casefold()
        if function == "startswith":
            return lambda obj: _text(obj.get(name)).startswith(folded)
        return lambda obj: _text(obj.get(name)).endswith(folded)

    def _comparison(self, word: Token) -> Predicate:
        name, kind = self._property(word)
        operator = self._take("word")
        if operator.value == "in":
            self._take("(")
            values = [self._literal(kind, name)]
            while self._peek().kind == ",":
                self._take(",")
                values.append(self._literal(kind, name))
            self._take(")")
            if len(values) > MAX_IN_VALUES:
                raise ODataError(
                    f"Too many values in the 'in' operator: {len(values)}; at most {MAX_IN_VALUES} allowed."
                )
            wanted = {_key(v) for v in values}
            return lambda obj: _key(obj.get(name)) in wanted
        if operator.value not in ("eq", "ne"):
            self._fail(f"unknown operator '{operator.value}'", operator)
        if operator.value == "ne":
            self._need_advanced("ne")
        value = _key(self._literal(kind, name))
        if operator.value == "eq":
            return lambda obj: _key(obj.get(name)) == value
        return lambda obj: _key(obj.get(name)) != value

    def _property(self, token: Token) -> tuple[str, type]:
        found = self.properties.get(token.value.lower())
        if found is None:
            raise ODataError(
                f"Could not find a property named '{token.value}' on type 'microsoft.graph.{self.entity}'."
            )
        return found

    def _literal(self, kind: type, name: str) -> str | bool | None:
        token = self._peek()
        if token.kind == "string":
            self.index += 1
            if len(token.value) > MAX_LITERAL_LENGTH:
                raise ODataError(
                    f"Invalid filter clause: a string literal is longer than {MAX_LITERAL_LENGTH} characters."
                )
            if kind is not str:
                raise ODataError(f"Invalid filter clause: '{name}' is not a string property.")
            return token.value
        if token.kind == "word" and token.value in ("true", "false", "null"):
            self.index += 1
            if token.value == "null":
                return None
            if kind is not bool:
                raise ODataError(f"Invalid filter clause: '{name}' is not a Boolean property.")
            return token.value == "true"
        self._fail("a literal was expected", token)
        raise AssertionError  # unreachable: _fail raises

    # Helpers ---------------------------------------------------------------------------------

    def _peek(self) -> Token:
        return self.tokens[self.index]

    def _take(self, kind: str) -> Token:
        token = self._peek()
        if token.kind != kind:
            self._fail(f"'{kind}' was expected" if kind != "word" else "a name was expected", token)
        self.index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token.kind == "word" and token.value == word:
            self.index += 1
            return True
        return False

    def _need_advanced(self, what: str) -> None:
        if not self.advanced:
            raise ODataError(
                f"Operator '{what}' is not supported because the required parameters might be missing. "
                "Try adding $count=true query parameter and ConsistencyLevel:eventual header.",
                "Request_UnsupportedQuery",
            )

    def _fail(self, why: str, token: Token | None = None) -> None:
        token = token or self._peek()
        where = "the end" if token.kind == "end" else f"position {token.position}"
        raise ODataError(f"Invalid filter clause: syntax error at {where}: {why} in '{self.text}'.")


def _text(value: object) -> str:
    return value.casefold() if isinstance(value, str) else ""


def _key(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def parse_filter(text: str, properties: Mapping[str, type], entity: str, *, advanced: bool) -> Predicate:
    return FilterParser(text, properties, entity, advanced=advanced).parse()


def parse_top(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise ODataError(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
            "Request_BadRequest",
        )
    return int(raw)


def parse_select(raw: str | None) -> list[str] | None:
    """The `$select` names, or None for the default set. Unknown names are ignored, as Graph does."""
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",")]
    if not all(names):
        raise ODataError(f"Invalid $select: '{raw}' has an empty property name.")
    return names


def select(properties: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    if names is None:
        return dict(properties)
    by_lower = {key.lower(): key for key in properties}
    return {by_lower[n.lower()]: properties[by_lower[n.lower()]] for n in names if n.lower() in by_lower}
