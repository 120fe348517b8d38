"""JSON <-> models: one cattrs converter, camelCase keys, strict scalars, lenient shapes.

Scalars are checked, not coerced (cattrs would turn ``"false"`` into ``True`` and ``"12"`` into
``12``), so a payload that contradicts the documented shape fails with the path of the field.
Unknown keys are ignored, so new API fields never break an old client.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import ResponseFormatError

T = TypeVar("T")

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")


def json_key(field: attrs.Attribute[Any]) -> str:
    """The JSON key of a model field: ``metadata["json"]`` or the camelCase of its name."""
    explicit = field.metadata.get("json")
    if isinstance(explicit, str):
        return explicit
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), field.name)


def _strict(kind: type[Any], *accepted: type[Any]) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got bool")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return structure


_exact_int = _strict(int, int)


def _structure_int(value: Any, type_: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON producers may write 12.0 for 12
    return int(_exact_int(value, type_))


_FRACTION = re.compile(r"\.(\d+)")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def _structure_datetime(value: Any, _: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    # Python 3.10's fromisoformat takes neither "Z", "+0000" nor fractions of other than 3 or
    # 6 digits; normalise those first.
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    return datetime.fromisoformat(_COMPACT_OFFSET.sub(r"\1:\2", text))


def _structure_dict(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


class _ItemError(Exception):
    """Item ``index`` of an array failed to structure with ``cause``."""

    def __init__(self, index: int, cause: Exception) -> None:
        super().__init__(index, cause)
        self.index = index
        self.cause = cause


def _structure_tuple(value: Any, type_: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    item_type = type_.__args__[0]
    items = []
    for index, item in enumerate(value):
        try:
            items.append(converter.structure(item, item_type))
        except Exception as exc:
            raise _ItemError(index, exc) from None
    return tuple(items)


def configure_converter(conv: cattrs.Converter) -> None:
    """Teach ``conv`` our JSON conventions."""
    conv.register_structure_hook(str, _strict(str, str))
    conv.register_structure_hook(bool, _strict(bool, bool))
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _strict(float, int, float))
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, lambda dt: dt.isoformat().replace("+00:00", "Z"))
    conv.register_structure_hook_func(
        lambda t: getattr(t, "__origin__", None) is dict, _structure_dict
    )
    conv.register_structure_hook_func(
        lambda t: getattr(t, "__origin__", None) is tuple and t.__args__[-1] is Ellipsis,
        _structure_tuple,
    )

    def renames(cls: type[Any]) -> dict[str, Any]:
        return {a.name: override(rename=json_key(a)) for a in attrs.fields(cls)}

    def structure_model(cls: type[Any]) -> Any:
        build = make_dict_structure_fn(cls, conv, **renames(cls))

        def structure(value: Any, type_: Any) -> Any:
            return build(_structure_dict(value, type_), type_)

        return structure

    conv.register_structure_hook_factory(attrs.has, structure_model)
    conv.register_unstructure_hook_factory(
        attrs.has,
        lambda cls: make_dict_unstructure_fn(
            cls, conv, _cattrs_omit_if_default=True, **renames(cls)
        ),
    )


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)
    configure_converter(conv)
    return conv


converter = make_converter()


def structure(payload: Any, cls: type[T], *, path: str = "$") -> T:
    """Build ``cls`` from JSON, or raise :class:`ResponseFormatError` naming the bad field."""
    try:
        return converter.structure(payload, cls)
    except (cattrs.BaseValidationError, _ItemError, TypeError, ValueError, KeyError) as exc:
        problem, where = _first_problem(exc, path)
        raise ResponseFormatError(
            f"unexpected response at {where}: {problem}", path=where
        ) from None


def unstructure(model: Any) -> Any:
    return converter.unstructure(model)


def _first_problem(exc: BaseException, path: str) -> tuple[str, str]:
    """Follow a cattrs error tree to its first leaf: (what went wrong, JSON path)."""
    while True:
        if isinstance(exc, _ItemError):
            path, exc = f"{path}[{exc.index}]", exc.cause
        elif isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
            inner = exc.exceptions[0]
            for note in getattr(inner, "__notes__", ()):
                if isinstance(note, AttributeValidationNote) and attrs.has(exc.cl):
                    path += "." + json_key(attrs.fields_dict(exc.cl)[note.name])
            exc = inner
        else:
            break
    if isinstance(exc, KeyError):
        return ("required field missing", path)
    return (str(exc) or type(exc).__name__, path)
