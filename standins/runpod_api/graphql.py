"""A small GraphQL document parser: enough to read what a client sends (operations, aliases,
arguments with variables and literals, nested selections). No fragments or directives; a
document using them is rejected with a GraphQL error, as an unsupported construct."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class GraphQLSyntaxError(Exception):
    pass


@dataclass
class Var:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Field] | None = None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class VarDef:
    name: str
    type: str  # e.g. "String!", "[Int]"
    default: Any = None
    has_default: bool = False

    @property
    def required(self) -> bool:
        return self.type.endswith("!") and not self.has_default


@dataclass
class Operation:
    kind: str  # "query" | "mutation"
    name: str | None
    var_defs: list[VarDef]
    selections: list[Field]


_TOKEN = re.compile(
    r'\s*(?:(?P<comment>#[^\n]*)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<spread>\.\.\.)|(?P<punct>[!$():=@\[\]{}|,&]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.replace("\ufeff", "")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise GraphQLSyntaxError(f"Syntax Error: Unexpected character {text[pos:].strip()[:1]!r}.")
        pos = m.end()
        kind = m.lastgroup
        if kind == "comment" or (kind == "punct" and m.group(kind) == ","):
            continue
        out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise GraphQLSyntaxError("Syntax Error: Unexpected <EOF>.")
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise GraphQLSyntaxError(f"Syntax Error: Expected {value or kind}, found {tok[1]!r}.")
        self.i += 1
        return tok[1]

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value and tok[0] in ("punct", "spread", "name")

    def document(self) -> list[Operation]:
        ops = []
        while self.peek() is not None:
            ops.append(self.operation())
        if not ops:
            raise GraphQLSyntaxError("Syntax Error: Unexpected <EOF>.")
        return ops

    def operation(self) -> Operation:
        if self.at("{"):
            return Operation("query", None, [], self.selection_set())
        kind = self.take(kind="name")
        if kind == "fragment":
            raise GraphQLSyntaxError("fragments are not supported by the fake RunPod API")
        if kind not in ("query", "mutation"):
            raise GraphQLSyntaxError(f'Syntax Error: Unexpected Name "{kind}".')
        name = None
        if self.peek() and self.peek()[0] == "name":
            name = self.take(kind="name")
        var_defs = []
        if self.at("("):
            self.take("(")
            while not self.at(")"):
                self.take("$")
                vname = self.take(kind="name")
                self.take(":")
                vtype = self.type_ref()
                vd = VarDef(vname, vtype)
                if self.at("="):
                    self.take("=")
                    vd.default, vd.has_default = self.value(const=True), True
                var_defs.append(vd)
            self.take(")")
        if self.at("@"):
            raise GraphQLSyntaxError("directives are not supported by the fake RunPod API")
        return Operation(kind, name, var_defs, self.selection_set())

    def type_ref(self) -> str:
        if self.at("["):
            self.take("[")
            inner = self.type_ref()
            self.take("]")
            t = f"[{inner}]"
        else:
            t = self.take(kind="name")
        if self.at("!"):
            self.take("!")
            t += "!"
        return t

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields = []
        while not self.at("}"):
            if self.at("..."):
                raise GraphQLSyntaxError("fragments are not supported by the fake RunPod API")
            fields.append(self.field())
        self.take("}")
        if not fields:
            raise GraphQLSyntaxError('Syntax Error: Expected Name, found "}".')
        return fields

    def field(self) -> Field:
        name = self.take(kind="name")
        alias = None
        if self.at(":"):
            self.take(":")
            alias, name = name, self.take(kind="name")
        args: dict[str, Any] = {}
        if self.at("("):
            self.take("(")
            while not self.at(")"):
                aname = self.take(kind="name")
                self.take(":")
                args[aname] = self.value()
            self.take(")")
        if self.at("@"):
            raise GraphQLSyntaxError("directives are not supported by the fake RunPod API")
        sels = self.selection_set() if self.at("{") else None
        return Field(name, alias, args, sels)

    def value(self, const: bool = False) -> Any:
        tok = self.peek()
        if tok is None:
            raise GraphQLSyntaxError("Syntax Error: Unexpected <EOF>.")
        kind, text = tok
        if text == "$" and kind == "punct":
            if const:
                raise GraphQLSyntaxError("Syntax Error: Unexpected variable in a constant.")
            self.take("$")
            return Var(self.take(kind="name"))
        if text == "[" and kind == "punct":
            self.take("[")
            items = []
            while not self.at("]"):
                items.append(self.value(const))
            self.take("]")
            return items
        if text == "{" and kind == "punct":
            self.take("{")
            obj = {}
            while not self.at("}"):
                k = self.take(kind="name")
                self.take(":")
                obj[k] = self.value(const)
            self.take("}")
            return obj
        self.i += 1
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            if text == "true":
                return True
            if text == "false":
                return False
            if text == "null":
                return None
            return text  # enum value
        raise GraphQLSyntaxError(f"Syntax Error: Unexpected {text!r}.")


def parse(text: str) -> list[Operation]:
    return _Parser(text).document()


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Substitute variables into an argument value (missing variables become None)."""
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {
            k: resolve(v, variables) for k, v in value.items() if not (isinstance(v, Var) and v.name not in variables)
        }
    return value
