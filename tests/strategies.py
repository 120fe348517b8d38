"""Hypothesis strategies for every model of ``userplane_async._models``, and for URL parts.

:func:`models` builds a strategy for any attrs model from its fields' annotations; a field's
strategy can be overridden by name. Values are what the JSON converter can reproduce exactly:
UTC datetimes with second precision (written as ISO strings with ``Z``) and JSON-compatible
free-form dicts with str keys.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import datetime, timezone
from typing import Any, TypeVar, Union

import attrs
from hypothesis import strategies as st

from userplane_async import _models
from userplane_async._models import Page, Pagination, RecordingResource

T = TypeVar("T")

#: Timezone-aware UTC datetimes with whole seconds, as the API writes them.
datetimes: st.SearchStrategy[datetime] = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(timezone.utc),
).map(lambda dt: dt.replace(microsecond=0))

#: Any JSON value: null, booleans, finite numbers, strings, arrays and str-keyed objects.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=10,
)

#: A free-form JSON object (``meta``, ``systemMeta``, ...).
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(), json_values, max_size=5
)

#: Text for a URL component: anything, including reserved and non-ASCII characters.
url_parts: st.SearchStrategy[str] = st.text(min_size=1, max_size=30)


def for_type(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for one field annotation of a model."""
    if tp is Any:
        return json_values
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([for_type(arg) for arg in args])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(for_type(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return json_objects
    if attrs.has(tp):
        return any_model(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(tp)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        str: st.text(),
        int: st.integers(),
        float: st.floats(allow_nan=False, allow_infinity=False),
        bool: st.booleans(),
        datetime: datetimes,
    }
    return simple[tp]


def models(cls: type[T], **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    """Instances of the attrs model ``cls``, one strategy per field (``overrides`` by name)."""
    model: Any = cls  # attrs' stubs want an AttrsInstance; T is any attrs class here
    attrs.resolve_types(model)  # a no-op for the exported models: the package resolved them
    fields = {
        field.name: overrides[field.name] if field.name in overrides else for_type(field.type)
        for field in attrs.fields(model)
    }
    return st.builds(cls, **fields)


def pages(items: st.SearchStrategy[T]) -> st.SearchStrategy[Page[T]]:
    """One page of a list endpoint holding ``items``."""
    return st.builds(
        Page, items=st.lists(items, max_size=3).map(tuple), pagination=models(Pagination)
    )


#: Every model class of ``userplane_async._models`` except the generic ``Page``.
MODEL_CLASSES: tuple[type[Any], ...] = tuple(
    obj for name, obj in sorted(vars(_models).items()) if attrs.has(obj) and obj is not Page
)

#: ``RecordingResource.kind`` is set by the client from the path, never read from JSON.
_OVERRIDES: dict[type[Any], dict[str, st.SearchStrategy[Any]]] = {
    RecordingResource: {"kind": st.none()},
}


def any_model(cls: type[T]) -> st.SearchStrategy[T]:
    """Instances of ``cls`` as they can come out of the converter."""
    return models(cls, **_OVERRIDES.get(cls, {}))
