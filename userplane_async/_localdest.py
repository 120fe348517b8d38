"""A local directory as a destination: folders held open by descriptor, files that appear whole
(``_sinks``), and ``DEST/manifest.jsonl`` (``_manifest``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ._localdir import LocalDir
from ._manifest import Manifest, verify_local
from ._provenance import Found, examine
from ._results import VerifyReport
from ._sinks import FileSink, write_atomically
from ._threads import in_thread, open_in_thread


class LocalFolder:
    """A directory; opened (and made) only when the first file has somewhere to go."""

    def __init__(self, path: Path, directory: LocalDir | None = None) -> None:
        self.path = path
        self._directory = directory

    async def _open(self) -> LocalDir:
        if self._directory is None:
            self._directory = await open_in_thread(lambda: LocalDir.open(self.path), LocalDir.close)
        return self._directory

    async def find(self, name: str, resource: str, size: int | None) -> tuple[Found, str] | None:
        directory = await self._open()
        if await in_thread(lambda: directory.lstat(name)) is None:
            return None
        return await in_thread(lambda: examine(directory, name, resource, size))

    async def open_sink(
        self,
        name: str,
        *,
        resource: str,
        size: int | None,
        replace: bool,
        on_landed: Callable[[int], object],
    ) -> FileSink:
        directory = await self._open()
        return await FileSink.open(
            directory, name, resource=resource, size=size, on_landed=on_landed, replace=replace
        )

    async def write_whole(self, name: str, data: bytes) -> None:
        await write_atomically(await self._open(), name, data)

    def location(self, name: str) -> tuple[Path, str | None]:
        return self.path / name, None

    async def aclose(self) -> None:
        directory, self._directory = self._directory, None
        if directory is not None:
            directory.close()


async def local_place(dest: str | os.PathLike[str]) -> tuple[LocalFolder, str | None]:
    """The directory and file name ``dest`` names; no name when it is (or, with a trailing
    slash, names) a directory: then the file is ``<kind>.<ext>``."""

    def split() -> tuple[LocalFolder, str | None]:
        path = Path(dest)
        if str(dest).endswith(("/", os.sep)) or path.is_dir():
            return LocalFolder(path), None
        return LocalFolder(path.parent), path.name

    return await in_thread(split)


class LocalDestination:
    """An archive in a local directory: ``root/<workspace>/<recording>/...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shown: Path | str = root

    async def manifest(self, workspace_id: str) -> Manifest:
        return await Manifest.open(self.root, workspace_id)

    async def folder(self, parts: Sequence[str]) -> LocalFolder:
        directory = await open_in_thread(lambda: LocalDir.open(self.root, parts), LocalDir.close)
        return LocalFolder(directory.path, directory)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    async def verify(self) -> VerifyReport:
        return await verify_local(self.root)

    async def aclose(self) -> None:
        pass
