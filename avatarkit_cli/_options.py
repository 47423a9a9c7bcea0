"""What the CLI knows about a provider's options class, without importing provider code.

Everything here reads the attrs class from the provider's light options module: field names,
types, defaults, attribute docstrings (from the source), and which environment variables an
env-reading default factory consults. A default that comes from a factory is never shown as
its value (it may be a secret read from the environment): it is shown as ``$VARIABLE``.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from avatarkit.secret import Secret

ENV_METADATA_KEY = "env"
"""attrs field metadata naming the variable(s) a default is read from, e.g.
``attrs.field(factory=..., metadata={"env": "MYAVATAR_API_KEY"})``; without it the CLI
finds the names in the factory's code."""

MASK = "********"
_SECRET_NAME = re.compile(r"key|secret|token|password|passwd|credential", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_BUILTIN_FACTORIES: tuple[Any, ...] = (dict, list, tuple, set, frozenset)
_CONTAINERS = frozenset(
    {"tuple", "list", "dict", "set", "frozenset", "Mapping", "Sequence", "Iterable", "Collection"}
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def is_secret_name(name: str) -> bool:
    """Whether an option or variable name suggests a credential (``api_key``, ``*_SECRET``)."""
    return bool(_SECRET_NAME.search(name))


class CannotEvaluate(Exception):
    """An option's environment default cannot be computed without an instance."""


@attrs.frozen
class OptionDoc:
    """One option of a provider, as ``avatarkit providers`` and ``avatarkit doctor`` show it."""

    name: str
    """What the app passes to ``avatarkit.get()`` (the attrs alias)."""
    type: str
    required: bool
    default: Any
    """The plain default (JSON-able or its repr), None for factories and required options."""
    default_display: str
    from_factory: bool
    env: tuple[str, ...]
    """Variables an env-reading default factory consults, in the order it reads them."""
    secret: bool
    description: str | None
    field: attrs.Attribute[Any] = attrs.field(repr=False, eq=False)

    def env_default(self) -> Any:
        """Evaluate the default factory (it reads the environment) and the field's converter.

        Only for ``from_factory`` options; the result may be a credential: never print it.
        """
        factory = _factory(self.field)
        if factory is None:
            raise CannotEvaluate(f"{self.name} has no default factory to evaluate")
        return _convert_field(self.field, factory())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "default_from_env": list(self.env) if self.from_factory else [],
            "secret": self.secret,
            "description": self.description,
        }


def check_value(field: attrs.Attribute[Any], value: Any) -> Any:
    """Run one field's converter and validator on ``value``, as the class would; the
    converted value.

    Lets a caller report every bad option at once instead of the first the class's
    ``__init__`` meets. Raises what they raise (``ConfigurationError`` for avatarkit's), or
    :class:`CannotEvaluate` if the converter needs the instance; a validator that reads the
    instance fails with its own error (it is given None), which the caller should not report.
    """
    converted = _convert_field(field, value)
    if field.validator is not None:
        field.validator(None, field, converted)
    return converted


def _convert_field(field: attrs.Attribute[Any], value: Any) -> Any:
    converter: Any = field.converter
    if converter is None:
        return value
    inner = getattr(converter, "converter", None)  # attrs.Converter (attrs >= 24.1)
    if inner is not None:
        if getattr(converter, "takes_self", False) or getattr(converter, "takes_field", False):
            raise CannotEvaluate(f"{option_name(field)}'s converter needs the instance")
        return inner(value)
    return converter(value)


def type_name(annotation: Any) -> str:
    """A field's annotation as text (``from __future__ import annotations`` keeps it text)."""
    if annotation is None:
        return ""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("collections.abc.", "")


def describe(options_class: type | None) -> list[OptionDoc]:
    """The options of an attrs options class ([] for None or a non-attrs class)."""
    if options_class is None or not attrs.has(options_class):
        return []
    docs = attribute_docs(options_class)
    return [_describe_field(f, docs.get(f.name)) for f in attrs.fields(options_class)]


def _describe_field(field: attrs.Attribute[Any], description: str | None) -> OptionDoc:
    name = option_name(field)
    tname = type_name(field.type)
    secret = is_secret_name(name) or "Secret" in tname
    default = field.default
    env: tuple[str, ...] = ()
    if default is attrs.NOTHING:
        return OptionDoc(
            name, tname, True, None, "(required)", False, env, secret, description, field
        )
    factory = _factory(field)
    if factory is not None:
        if factory in _BUILTIN_FACTORIES:
            value = factory()
            return OptionDoc(
                name, tname, False, value, repr(value), False, env, secret, description, field
            )
        env = env_names(field)
        if env:
            display = " or ".join(f"${n}" for n in env)
        elif reads_env(factory):
            display = "(from env)"
        else:
            display = "(computed)"
        return OptionDoc(name, tname, False, None, display, True, env, secret, description, field)
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # takes_self: can't run it
        return OptionDoc(
            name, tname, False, None, "(computed)", False, env, secret, description, field
        )
    if isinstance(default, Secret) or (secret and default is not None):
        return OptionDoc(name, tname, False, MASK, MASK, False, env, True, description, field)
    return OptionDoc(
        name, tname, False, _jsonable(default), _short(repr(default)), False, env, secret,
        description, field,
    )  # fmt: skip


def _factory(field: attrs.Attribute[Any]) -> Callable[[], Any] | None:
    """The field's default factory, if it has one that takes no argument."""
    default: Any = field.default
    if isinstance(default, attrs.Factory) and not default.takes_self:  # type: ignore[arg-type]
        factory: Callable[[], Any] = default.factory
        return factory
    return None


def option_name(field: attrs.Attribute[Any]) -> str:
    alias = getattr(field, "alias", None)
    return alias if isinstance(alias, str) and alias else field.name.lstrip("_")


def env_names(field: attrs.Attribute[Any]) -> tuple[str, ...]:
    """The variables a field's default factory reads: its ``env`` metadata, else the
    UPPER_SNAKE names its code (or a module function it calls) uses to read ``os.environ``."""
    declared = field.metadata.get(ENV_METADATA_KEY)
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, (list, tuple)):
        return tuple(str(n) for n in declared)
    factory = _factory(field)
    if factory is None or not reads_env(factory):
        return ()
    found: list[str] = []
    for value in _strings(factory):
        if _ENV_NAME.match(value) and value not in found:
            found.append(value)
    return tuple(found)


def reads_env(func: Callable[..., Any]) -> bool:
    """Whether ``func`` (or a module-level function it calls) reads ``os.environ``/getenv."""
    return any("environ" in code.co_names or "getenv" in code.co_names for code, _ in _codes(func))


def _codes(func: Callable[..., Any]) -> Iterator[tuple[types.CodeType, dict[str, Any]]]:
    code = getattr(func, "__code__", None)
    if not isinstance(code, types.CodeType):
        return
    module_globals: dict[str, Any] = getattr(func, "__globals__", {})
    yield from _nested(code, module_globals)
    # one level into the module's own helpers it calls, e.g. ``lambda: _read(API_KEY_ENV)``
    for name in code.co_names:
        helper = module_globals.get(name)
        helper_code = getattr(helper, "__code__", None)
        if isinstance(helper, types.FunctionType) and isinstance(helper_code, types.CodeType):
            yield from _nested(helper_code, helper.__globals__)


def _nested(
    code: types.CodeType, module_globals: dict[str, Any]
) -> Iterator[tuple[types.CodeType, dict[str, Any]]]:
    yield code, module_globals
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const, module_globals)


def _strings(func: Callable[..., Any]) -> Iterator[str]:
    for code, module_globals in _codes(func):
        for const in code.co_consts:
            if isinstance(const, str):
                yield const
        for name in code.co_names:
            value = module_globals.get(name)
            if isinstance(value, str):
                yield value


def attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string right after a field) from the class's source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if node is None:
        return {}
    docs: dict[str, str] = {}
    for stmt, following in zip(node.body, node.body[1:], strict=False):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            text = " ".join(inspect.cleandoc(following.value.value).split())
            docs[stmt.target.id] = text.replace("``", "")
    return docs


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- values given on the command line (``-o key=value``) ---------------------------------


def _members(type_text: str) -> set[str]:
    """The head names of a type's top-level union members: ``int | None`` -> {int, None}."""
    text = type_text.strip()
    for wrapper in ("Optional[", "Union["):
        if text.startswith(wrapper) and text.endswith("]"):
            inner = _split(text[len(wrapper) : -1], ",")
            found = set().union(*(_members(part) for part in inner))
            return found | ({"None"} if wrapper == "Optional[" else set())
    heads: set[str] = set()
    for part in _split(text, "|"):
        match = re.match(r"[\w.]+", part.strip())
        if match:
            heads.add(match.group().rsplit(".", 1)[-1])
    return heads


def _split(text: str, sep: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def convert(type_text: str, raw: str) -> Any:
    """Turn a command-line string into the value an option of type ``type_text`` expects.

    ``none``/``null`` is None for optional options; ``str`` (and ``Secret``) options keep the
    string; ``bool`` takes true/false, yes/no, on/off, 1/0; ``int`` and ``float`` parse
    numbers; list, tuple and dict options parse JSON. A value that does not parse stays a
    string, so the option's own validation says what is wrong with it.
    """
    heads = _members(type_text)
    if raw.lower() in ("none", "null") and "None" in heads:
        return None
    if heads & {"str", "Secret", "Any"} or not heads:
        return raw
    if "bool" in heads and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    if "int" in heads:
        try:
            return int(raw)
        except ValueError:
            pass
    if "float" in heads:
        try:
            return float(raw)
        except ValueError:
            pass
    if heads & _CONTAINERS:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw
