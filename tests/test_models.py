"""Models and their JSON converter: round-trips, lenient shapes, strict scalars, error paths."""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import userplane_async
from tests.strategies import MODEL_CLASSES, any_model, pages
from userplane_async import (
    Link,
    Me,
    Page,
    Pagination,
    Project,
    Recording,
    RecordingLink,
    RecordingMeta,
    RecordingResource,
    ResourceKind,
    ResourceSource,
    ResponseFormatError,
    User,
    Workspace,
    WorkspaceMembership,
    _models,
)
from userplane_async._convert import json_key, structure, unstructure

PRESIGNED = (
    "https://storage.example.com/recordings/rec_1/video.mp4"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SECRETCRED"
    "&X-Amz-Expires=300&X-Amz-Signature=SECRETSIG"
)


def _optional_fields(cls: type[Any]) -> list[attrs.Attribute[Any]]:
    """The fields of ``cls`` whose annotation admits ``None``."""
    return [
        field
        for field in attrs.fields(cls)
        if field.type is Any
        or (
            typing.get_origin(field.type) in (typing.Union, types.UnionType)
            and type(None) in typing.get_args(field.type)
        )
    ]


def _required_payload(cls: type[Any]) -> dict[str, Any]:
    """A minimal JSON object for ``cls``: every field without a default, as a plain value."""
    values: dict[Any, Any] = {str: "id_1", int: 1, bool: True}
    return {
        json_key(field): _required_payload(field.type)
        if attrs.has(field.type)
        else values[field.type]
        for field in attrs.fields(cls)
        if field.default is attrs.NOTHING
    }


# --- round-trips -----------------------------------------------------------------------------


def test_strategies_cover_every_public_model() -> None:
    """tests/strategies.py knows every model class, and every model class is exported."""
    exported = {getattr(userplane_async, name) for name in userplane_async.__all__}
    model_classes = {obj for obj in vars(_models).values() if attrs.has(obj)}

    assert model_classes <= exported
    assert set(MODEL_CLASSES) == model_classes - {Page}


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in MODEL_CLASSES])
@given(data=st.data())
@settings(deadline=None)  # drawing deeply nested models inside the test is slow on busy CI
def test_roundtrip(cls: type[Any], data: st.DataObject) -> None:
    """Structuring an unstructured model gives the model back."""
    model = data.draw(any_model(cls))

    assert structure(unstructure(model), cls) == model


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in MODEL_CLASSES])
@given(data=st.data())
@settings(deadline=None)  # drawing deeply nested models inside the test is slow on busy CI
def test_roundtrip_through_json_text(cls: type[Any], data: st.DataObject) -> None:
    """An unstructured model survives json.dumps and json.loads unchanged."""
    model = data.draw(any_model(cls))

    assert structure(json.loads(json.dumps(unstructure(model))), cls) == model


@given(page=pages(any_model(Recording)))
def test_page_roundtrip(page: Page[Recording]) -> None:
    """A generic page of recordings round-trips with its items and pagination."""
    assert structure(unstructure(page), Page[Recording]) == page


def test_datetimes_are_written_with_z() -> None:
    """Datetimes are written as ISO-8601 strings with a trailing Z and read back as UTC."""
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

    data = unstructure(Recording("rec_1", recording_started_at=when))

    assert data == {"recordingId": "rec_1", "recordingStartedAt": "2024-05-06T07:08:09Z"}
    assert structure(data, Recording).recording_started_at == when


# --- lenient shapes --------------------------------------------------------------------------


def test_unknown_keys_are_ignored() -> None:
    """Keys the models do not know, at any depth, are dropped without an error."""
    payload = {
        "recordingId": "rec_1",
        "brandNewField": {"nested": [1, 2]},
        "meta": {"status": "ready", "futureThing": True, "link": {"linkId": "l1", "x": 1}},
    }

    recording = structure(payload, Recording)

    assert recording == Recording(
        "rec_1", meta=RecordingMeta(status="ready", link=RecordingLink("l1"))
    )


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in MODEL_CLASSES])
def test_nulls_accepted_for_optional_fields(cls: type[Any]) -> None:
    """Every optional field accepts an explicit JSON null and reads it as None."""
    optional = _optional_fields(cls)
    payload = {**_required_payload(cls), **{json_key(field): None for field in optional}}

    model = structure(payload, cls)

    assert all(getattr(model, field.name) is None for field in optional)


def test_nested_nulls_and_missing_optional_objects() -> None:
    """Optional nested objects may be null or absent."""
    me = structure({"user": {"id": "u1", "createdAt": None}, "stats": None}, Me)

    assert me == Me(User("u1"))


@pytest.mark.parametrize(
    ("cls", "payload", "attribute", "expected"),
    [
        pytest.param(
            Recording,
            {"recordingId": "r", "recordingDurationMs": 1500},
            "recording_duration_ms",
            1500,
            id="recordingDurationMs",
        ),
        pytest.param(
            User, {"id": "u", "emailVerified": True}, "email_verified", True, id="emailVerified"
        ),
        pytest.param(
            Workspace,
            {"workspaceId": "w", "workspaceMembership": {"workspaceRole": "admin"}},
            "workspace_membership",
            WorkspaceMembership(workspace_role="admin"),
            id="workspaceMembership",
        ),
        pytest.param(
            Link,
            {"linkId": "l", "linkURL": "https://u.example/l"},
            "link_url",
            "https://u.example/l",
            id="linkURL",
        ),
        pytest.param(
            Link,
            {"linkId": "l", "linkUrl": "https://u.example/l"},
            "link_url",
            None,
            id="linkUrl-is-unknown",
        ),
        pytest.param(
            Link,
            {"linkId": "l", "link_url": "https://u.example/l"},
            "link_url",
            None,
            id="snake-case-is-unknown",
        ),
        pytest.param(
            RecordingResource,
            {"recordingId": "r", "captureEnabled": False},
            "capture_enabled",
            False,
            id="captureEnabled",
        ),
        pytest.param(
            Pagination,
            {"page": 2, "perPage": 20, "totalPages": 3, "hasMore": True},
            "total_pages",
            3,
            id="totalPages",
        ),
    ],
)
def test_camel_case_keys(
    cls: type[Any], payload: dict[str, Any], attribute: str, expected: object
) -> None:
    """Fields are read from their camelCase JSON key (linkURL for link_url), nothing else."""
    assert getattr(structure(payload, cls), attribute) == expected


def test_integral_float_is_read_as_int() -> None:
    """A JSON number such as 12.0 is accepted for an int field and read as 12."""
    recording = structure({"recordingId": "r", "recordingDurationMs": 12.0}, Recording)

    assert recording.recording_duration_ms == 12
    assert type(recording.recording_duration_ms) is int


def test_link_url_is_written_as_link_url_key() -> None:
    """Unstructuring a Link writes link_url under linkURL, and other fields in camelCase."""
    link = Link("l1", link_url="https://u.example/l1", link_provider_reference="ref", meta={"a": 1})

    assert unstructure(link) == {
        "linkId": "l1",
        "linkURL": "https://u.example/l1",
        "linkProviderReference": "ref",
        "meta": {"a": 1},
    }


# --- strict failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "cls", "root", "path"),
    [
        pytest.param(
            {"recordingId": "r", "recordingDurationMs": "12"},
            Recording,
            "$.data.recording",
            "$.data.recording.recordingDurationMs",
            id="str-for-int",
        ),
        pytest.param(
            {"recordingId": "r", "recordingDurationMs": 12.5},
            Recording,
            "$.data.recording",
            "$.data.recording.recordingDurationMs",
            id="fraction-for-int",
        ),
        pytest.param(
            {"recordingId": "r", "recordingDurationMs": True},
            Recording,
            "$.data.recording",
            "$.data.recording.recordingDurationMs",
            id="bool-for-int",
        ),
        pytest.param(
            {"linkId": "l", "linkReusable": "false"},
            Link,
            "$.data.link",
            "$.data.link.linkReusable",
            id="string-false-for-bool",
        ),
        pytest.param(
            {"linkId": "l", "linkReusable": 0},
            Link,
            "$.data.link",
            "$.data.link.linkReusable",
            id="int-for-bool",
        ),
        pytest.param(
            {"workspaceId": "w", "workspaceName": 5},
            Workspace,
            "$.data.workspace",
            "$.data.workspace.workspaceName",
            id="int-for-str",
        ),
        pytest.param(
            {"projectId": 42},
            Project,
            "$.data.project",
            "$.data.project.projectId",
            id="int-for-id",
        ),
        pytest.param(
            {"linkId": "l", "meta": []},
            Link,
            "$.data.link",
            "$.data.link.meta",
            id="list-for-free-form-object",
        ),
        pytest.param(
            {"recordingId": "r", "meta": ["ready"]},
            Recording,
            "$.data.recording",
            "$.data.recording.meta",
            id="list-for-model",
        ),
        pytest.param(
            {"recordingId": "r", "sources": {"url": "https://s.example/v.mp4"}},
            RecordingResource,
            "$.data.resource",
            "$.data.resource.sources",
            id="object-for-array",
        ),
        pytest.param(
            {"recordingId": "r", "recordingStartedAt": "yesterday"},
            Recording,
            "$.data.recording",
            "$.data.recording.recordingStartedAt",
            id="bad-iso-date",
        ),
        pytest.param(
            {"recordingId": "r", "recordingStartedAt": 1714979289},
            Recording,
            "$.data.recording",
            "$.data.recording.recordingStartedAt",
            id="epoch-number-for-date",
        ),
        pytest.param(
            {"recordingId": "r", "meta": {"link": {"linkId": "l", "createdAt": "2024-13-01"}}},
            Recording,
            "$.data.recording",
            "$.data.recording.meta.link.createdAt",
            id="nested-bad-date",
        ),
        pytest.param(
            {"user": {"id": "u"}, "stats": {"links": "3"}},
            Me,
            "$.data",
            "$.data.stats.links",
            id="nested-str-for-int",
        ),
        pytest.param(
            {"title": "no id"},
            Project,
            "$.data.project",
            "$.data.project.projectId",
            id="missing-id",
        ),
        pytest.param(
            {"recordingId": "r", "meta": {"creator": {"name": "Ann"}}},
            Recording,
            "$.data.recording",
            "$.data.recording.meta.creator.workspaceMemberId",
            id="nested-missing-id",
        ),
        pytest.param(
            {"recordingId": "r", "sources": [{"type": 5, "url": "https://s.example/v.mp4"}]},
            RecordingResource,
            "$",
            "$.sources[0].type",
            id="array-item-field",
        ),
        pytest.param(
            {"recordingId": "r", "sources": [{"url": "https://s.example/a"}, {"type": "mp4"}]},
            RecordingResource,
            "$",
            "$.sources[1].url",
            id="second-array-item-missing-url",
        ),
        pytest.param(
            {"recordingId": "r", "sources": ["https://s.example/a"]},
            RecordingResource,
            "$",
            "$.sources[0]",
            id="string-for-array-item",
        ),
        pytest.param([], Recording, "$.data.recording", "$.data.recording", id="top-level-array"),
        pytest.param(None, Recording, "$.data.recording", "$.data.recording", id="top-level-null"),
        pytest.param(
            "rec_1", Recording, "$.data.recording", "$.data.recording", id="top-level-str"
        ),
        pytest.param({"user": "u1"}, Me, "$.data", "$.data.user", id="str-for-nested-model"),
        pytest.param(
            {"items": [], "pagination": {"page": 1, "perPage": "20"}},
            Page[Recording],
            "$",
            "$.pagination.perPage",
            id="page-pagination",
        ),
        pytest.param(
            {
                "items": [{"recordingId": "a"}, {"recordingId": None}],
                "pagination": {"page": 1, "perPage": 20},
            },
            Page[Recording],
            "$",
            "$.items[1].recordingId",
            id="page-item",
        ),
    ],
)
def test_malformed_payload_names_its_path(payload: object, cls: Any, root: str, path: str) -> None:
    """A payload contradicting the model raises ResponseFormatError whose path names the field."""
    with pytest.raises(ResponseFormatError) as info:
        structure(payload, cls, path=root)

    assert info.value.path == path
    assert path in str(info.value)


def test_malformed_payload_error_has_no_cause() -> None:
    """The converter's internal error tree is not chained onto ResponseFormatError."""
    with pytest.raises(ResponseFormatError) as info:
        structure({"recordingId": 1}, Recording)

    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_malformed_item_of_a_tuple_names_its_index() -> None:
    """A bad item in a list answer names the list key and the item's index."""
    payload = [{"recordingId": "a"}, {"recordingId": "b"}, {"recordingId": "c", "meta": 1}]

    with pytest.raises(ResponseFormatError) as info:
        structure(payload, tuple[Recording, ...], path="$.data.recordings")

    assert info.value.path == "$.data.recordings[2].meta"


# --- repr hides presigned queries ------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(RecordingResource("rec_1", ResourceKind.VIDEO, url=PRESIGNED), id="resource"),
        pytest.param(ResourceSource(PRESIGNED, type="video/mp4"), id="source"),
        pytest.param(
            RecordingResource("rec_1", sources=(ResourceSource(PRESIGNED),)), id="nested-source"
        ),
    ],
)
def test_repr_hides_presigned_query(model: object) -> None:
    """repr shows where a presigned URL points but never its signature or credential."""
    shown = repr(model)

    assert "SECRETSIG" not in shown
    assert "SECRETCRED" not in shown
    assert "X-Amz" not in shown
    assert "https://storage.example.com/recordings/rec_1/video.mp4?<redacted>" in shown


def test_repr_of_unavailable_resource_shows_none() -> None:
    """A resource without a URL shows url=None in its repr."""
    assert "url=None" in repr(RecordingResource("rec_1", message="not captured"))


def test_resource_availability_follows_url() -> None:
    """A resource is available exactly when it has a URL."""
    assert RecordingResource("r", url=PRESIGNED).available
    assert not RecordingResource("r", message="processing").available


def test_models_are_frozen() -> None:
    """Models cannot be changed after construction."""
    recording = Recording("rec_1")

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        recording.recording_id = "rec_2"  # type: ignore[misc]


# --- ResourceKind ----------------------------------------------------------------------------


def test_resource_kind_values_are_the_path_suffixes() -> None:
    """ResourceKind has exactly the API's five resource path suffixes as values."""
    assert [kind.value for kind in ResourceKind] == [
        "video",
        "thumbnail",
        "console-log",
        "network-log",
        "action",
    ]


@pytest.mark.parametrize("kind", [pytest.param(kind, id=kind.value) for kind in ResourceKind])
def test_resource_kind_is_its_suffix_as_text(kind: ResourceKind) -> None:
    """A ResourceKind formats as, compares equal to, and is built from its path suffix."""
    assert str(kind) == kind.value
    assert f"{kind}" == kind.value
    assert kind == kind.value
    assert ResourceKind(kind.value) is kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-07T05:31:56Z", datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)),
        ("2023-11-07T05:31:56.12Z", datetime(2023, 11, 7, 5, 31, 56, 120000, tzinfo=timezone.utc)),
        (
            "2023-11-07T05:31:56.1234567+0000",
            datetime(2023, 11, 7, 5, 31, 56, 123456, tzinfo=timezone.utc),
        ),
    ],
)
def test_datetime_forms_every_supported_python_reads(text: str, expected: datetime) -> None:
    """Z, compact offsets and odd fraction lengths parse alike on Python 3.10 and later."""
    assert structure({"id": "u", "createdAt": text}, User).created_at == expected
