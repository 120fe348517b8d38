"""The blocking client's namespaces: each method runs its async twin on the client's loop.

The wrappers are generic (``ParamSpec``), so every blocking method has exactly the signature,
defaults and docstring of the async one, and mypy checks calls against it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import Concatenate, Generic, ParamSpec, TypeVar

from ._models import Page
from ._pagination import AsyncPaginator
from ._portal import LoopThread, iterate
from ._resources.links import Links as AsyncLinks
from ._resources.projects import Projects as AsyncProjects
from ._resources.recordings import Recordings as AsyncRecordings
from ._resources.workspaces import Workspaces as AsyncWorkspaces
from ._stream import ResourceStream

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Facade(Generic[A]):
    """A blocking face of an async object: its methods run on ``loop``."""

    def __init__(self, loop: LoopThread, target: A) -> None:
        self._loop = loop
        self._target = target


def blocking(
    method: Callable[Concatenate[A, P], Awaitable[R]],
) -> Callable[Concatenate[Facade[A], P], R]:
    """A method that runs the async ``method`` on the loop and waits for its result."""

    @functools.wraps(method)
    def call(self: Facade[A], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop.call(functools.partial(method, self._target, *args, **kwargs))

    return call


def paginated(
    method: Callable[Concatenate[A, P], AsyncPaginator[T]],
) -> Callable[Concatenate[Facade[A], P], Paginator[T]]:
    """A list method whose pages are fetched on the loop as a plain iterator asks for them."""

    def call(self: Facade[A], /, *args: P.args, **kwargs: P.kwargs) -> Paginator[T]:
        return Paginator(self._loop, method(self._target, *args, **kwargs))

    returns = str(inspect.signature(method).return_annotation)
    return _twin(call, method, "Paginator" + returns.removeprefix("AsyncPaginator"))


def streamed(
    method: Callable[Concatenate[A, P], AbstractAsyncContextManager[ResourceStream]],
) -> Callable[Concatenate[Facade[A], P], AbstractContextManager[BlockingResourceStream]]:
    """A stream method: ``with ...(...) as body: for chunk in body`` (closed on exit)."""

    def call(
        self: Facade[A], /, *args: P.args, **kwargs: P.kwargs
    ) -> AbstractContextManager[BlockingResourceStream]:
        return _open(self._loop, method(self._target, *args, **kwargs))

    return _twin(call, method, "AbstractContextManager[BlockingResourceStream]")


def _twin(wrapper: F, method: Callable[..., object], returns: str) -> F:
    """``functools.wraps``, with the return type that ``help()`` and notebooks should show."""
    functools.update_wrapper(wrapper, method)
    signature = inspect.signature(method).replace(return_annotation=returns)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper


@contextmanager
def _open(
    loop: LoopThread, opening: AbstractAsyncContextManager[ResourceStream]
) -> Iterator[BlockingResourceStream]:
    with loop.hold(opening) as stream:
        yield BlockingResourceStream(loop, stream)


class Paginator(Generic[T]):
    """``for item in paginator`` walks every page lazily; ``pages()`` and ``page(n)`` too.

    The blocking twin of :class:`AsyncPaginator`: each page is fetched when the iteration
    reaches it, with the same stopping rules.
    """

    def __init__(self, loop: LoopThread, pages: AsyncPaginator[T]) -> None:
        self._loop = loop
        self._pages = pages

    def page(self, number: int) -> Page[T]:
        """Fetch one page (1-based)."""
        return self._loop.call(functools.partial(self._pages.page, number))

    def pages(self) -> Iterator[Page[T]]:
        """Iterate over whole pages, fetching each only when it is asked for."""
        return iterate(self._loop, self._pages.pages())

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class BlockingResourceStream:
    """The bytes of one resource, for passing on: ``for chunk in stream``.

    The blocking twin of :class:`ResourceStream`, with the same attributes: ``status``
    (200 whole, 206 a range), ``content_range``, ``content_length`` (of this body), ``size``
    (the whole object's), ``offset`` where this stream starts in it, ``content_type`` and
    ``etag``. A break mid-body raises :class:`TransportError`; open a new stream at the
    offset reached to go on.
    """

    def __init__(self, loop: LoopThread, stream: ResourceStream) -> None:
        self._loop = loop
        self._stream = stream
        self.status = stream.status
        self.content_range = stream.content_range
        self.content_length = stream.content_length
        self.content_type = stream.content_type
        self.size = stream.size
        self.etag = stream.etag
        self.offset = stream.offset

    def __repr__(self) -> str:
        return repr(self._stream).replace("ResourceStream", type(self).__name__, 1)

    def __iter__(self) -> Iterator[bytes]:
        return iterate(self._loop, aiter(self._stream))


class Workspaces(Facade[AsyncWorkspaces]):
    """The workspaces the key's user belongs to."""

    list = paginated(AsyncWorkspaces.list)
    get = blocking(AsyncWorkspaces.get)
    invite_url = blocking(AsyncWorkspaces.invite_url)


class Projects(Facade[AsyncProjects]):
    """Projects of a workspace (they carry the retention recordings inherit)."""

    list = paginated(AsyncProjects.list)
    get = blocking(AsyncProjects.get)


class Links(Facade[AsyncLinks]):
    """Recording links of a workspace."""

    list = paginated(AsyncLinks.list)
    get = blocking(AsyncLinks.get)
    create = blocking(AsyncLinks.create)
    update = blocking(AsyncLinks.update)
    delete = blocking(AsyncLinks.delete)


class Recordings(Facade[AsyncRecordings]):
    """Recordings of a workspace and their resources.

    ``download(..., progress=...)`` and ``on_retry`` callbacks run on the client's loop
    thread, not the calling one: keep them short, and do not call the client from them.
    """

    list = paginated(AsyncRecordings.list)
    get = blocking(AsyncRecordings.get)
    delete = blocking(AsyncRecordings.delete)
    resource = blocking(AsyncRecordings.resource)
    video = blocking(AsyncRecordings.video)
    thumbnail = blocking(AsyncRecordings.thumbnail)
    console_log = blocking(AsyncRecordings.console_log)
    network_log = blocking(AsyncRecordings.network_log)
    action = blocking(AsyncRecordings.action)
    download = blocking(AsyncRecordings.download)
    stream = streamed(AsyncRecordings.stream)
    stream.__doc__ = """``with ...stream(...) as body: for chunk in body`` (closed on exit).

    ``range=ByteRange(start, end)`` streams those bytes (``offset=n`` is ``ByteRange(n)``);
    ``if_range=etag`` serves them only while the object has that ETag, else all of it.

    An open stream holds one of the client's ``stream_concurrency`` slots, apart from the
    download slots: viewers and downloads never wait for each other.
    """
