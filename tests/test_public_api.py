"""The public surface: one flat namespace with a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import typing

import attrs
import pytest

import userplane_async
from userplane_async import (
    ClientClosedError,
    ConfigurationError,
    InvalidIDError,
    UserplaneError,
    _errors,
)

EXPORTED = [getattr(userplane_async, name) for name in userplane_async.__all__]
EXPORTED_CLASSES = [obj for obj in EXPORTED if inspect.isclass(obj)]
ERROR_CLASSES = [cls for cls in EXPORTED_CLASSES if issubclass(cls, BaseException)]


def _defined_public_names() -> set[str]:
    """Non-underscore classes and functions of the package reachable from its top level."""
    return {
        name
        for name, obj in vars(userplane_async).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__.split(".")[0] == "userplane_async"
    }


def test_all_is_sorted() -> None:
    """__all__ is kept sorted."""
    assert userplane_async.__all__ == sorted(userplane_async.__all__)


def test_all_has_no_duplicates() -> None:
    """No name is exported twice."""
    assert len(set(userplane_async.__all__)) == len(userplane_async.__all__)


def test_all_is_exactly_the_public_names() -> None:
    """__all__ lists every public class and function of the package, __version__ and aliases."""
    aliases = {"ArchiveEvent"}  # a Union of event classes: neither a class nor a function
    assert set(userplane_async.__all__) == _defined_public_names() | {"__version__"} | aliases


def test_every_exported_name_exists() -> None:
    """Every name in __all__ can be imported from the package."""
    missing = [name for name in userplane_async.__all__ if not hasattr(userplane_async, name)]

    assert missing == []


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in EXPORTED_CLASSES])
def test_exported_classes_show_the_public_module(cls: type) -> None:
    """Every exported class claims to live in userplane_async, not in a private module."""
    assert cls.__module__ == "userplane_async"
    assert getattr(userplane_async, cls.__name__) is cls


def test_version_matches_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert userplane_async.__version__ == importlib.metadata.version("userplane-async")


def test_every_error_class_is_exported() -> None:
    """Every exception class defined in the errors module is in __all__, and nothing else is."""
    defined = {
        obj
        for name, obj in vars(_errors).items()
        if not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, BaseException)
    }

    assert set(ERROR_CLASSES) == defined


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in ERROR_CLASSES])
def test_every_error_subclasses_the_root(cls: type[BaseException]) -> None:
    """Every exported exception derives from UserplaneError and is named ...Error."""
    assert issubclass(cls, UserplaneError)
    assert cls.__name__.endswith("Error")


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        pytest.param(ConfigurationError, ValueError, id="ConfigurationError"),
        pytest.param(InvalidIDError, ValueError, id="InvalidIDError"),
        pytest.param(ClientClosedError, RuntimeError, id="ClientClosedError"),
    ],
)
def test_programming_errors_are_builtin_errors_too(
    cls: type[UserplaneError], builtin: type[Exception]
) -> None:
    """Programming errors can also be caught as the matching built-in exception."""
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("misuse")


@pytest.mark.parametrize(
    "cls",
    [obj for name in userplane_async.__all__ if attrs.has(obj := getattr(userplane_async, name))],
)
def test_type_hints_resolve_from_the_public_module(cls: type) -> None:
    """typing.get_type_hints works on every public model despite the rewritten __module__."""
    assert typing.get_type_hints(cls)


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(run.stdout.split())


def test_importing_the_package_loads_nothing_it_does_not_need() -> None:
    """``import userplane_async`` is cheap (issue 12): aiohttp, attrs, cattrs, anyio and the
    rest load with the first name that needs them, not with the package."""
    loaded = _modules_after("import userplane_async")
    libraries = {"aiohttp", "attr", "attrs", "cattrs", "anyio", "rich", "yarl", "obstore"}
    assert {m for m in loaded if m.split(".")[0] in libraries} == set()
    assert {m for m in loaded if m.startswith("userplane_async.")} == {"userplane_async._errors"}


def test_the_first_use_of_a_name_loads_what_it_needs() -> None:
    loaded = _modules_after("from userplane_async import AsyncUserplane")
    assert {"aiohttp", "userplane_async._client"} <= loaded


def test_the_command_line_loads_the_fake_only_to_run_it() -> None:
    assert "userplane_async.testing" not in _modules_after("import userplane_async.cli")


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        userplane_async.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_dir_lists_every_public_name() -> None:
    assert set(userplane_async.__all__) <= set(dir(userplane_async))
