"""A destination directory held open by its file descriptor.

Every file operation of a download or an archive happens relative to such a descriptor
(``dir_fd=``), so a symbolic link planted below the destination is never followed out of it:
each directory from the destination down is opened with ``O_NOFOLLOW``, and names inside
are never resolved through a link. The destination itself is the user's choice and is
followed like any path they give. All methods block; callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ._errors import DestinationError

_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def destination_error(exc: OSError, action: str) -> DestinationError:
    """A :class:`DestinationError` for an OS error, naming what was being done."""
    reason = exc.strerror or type(exc).__name__
    return DestinationError(f"cannot {action}: {reason}", errno=exc.errno)


class LocalDir:
    """One directory, open: ``fd`` for ``dir_fd=`` calls, ``path`` for messages and results."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, base: Path, parts: Sequence[str] = (), *, create: bool = True) -> LocalDir:
        """Open ``base/parts...``: ``base`` as any path, each part without following a link.

        Missing directories are made (``create``) with the umask's permissions. A part that
        is a link or not a directory raises :class:`DestinationError`, naming only the
        directory it was found in, never the link's target.
        """
        try:
            if create:
                base.mkdir(parents=True, exist_ok=True)
            fd = os.open(base, _DIRECTORY)
        except OSError as exc:
            raise destination_error(exc, f"open {base}") from None
        directory = cls(fd, base)
        try:
            for part in parts:
                directory = directory._child(part, create=create)
        except BaseException:
            directory.close()
            raise
        return directory

    def _child(self, name: str, *, create: bool) -> LocalDir:
        """Open ``name`` inside this directory (made if missing) and close this one."""
        path = self.path / name
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=self.fd)
            fd = os.open(name, _DIRECTORY | _NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                if self.is_link(name):  # Linux says ENOTDIR for a link with O_DIRECTORY
                    message = (
                        f"{path} is a symbolic link; it is not followed out of the destination"
                    )
                    raise DestinationError(message, errno=errno.ELOOP) from None
                raise DestinationError(f"{path} is not a directory", errno=errno.ENOTDIR) from None
            raise destination_error(exc, f"open {path}") from None
        finally:
            self.close()
        return LocalDir(fd, path)

    def is_link(self, name: str) -> bool:
        info = self.lstat(name)
        return info is not None and stat.S_ISLNK(info.st_mode)

    def lstat(self, name: str) -> os.stat_result | None:
        """What is at ``name`` itself (a link is not followed), or None if nothing is."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def create(self, name: str, mode: int = 0o666) -> int:
        """A new file (never an existing name, never through a link), opened for writing.

        ``mode`` is filtered by the umask, as for ``open()``.
        """
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        return os.open(name, flags, mode, dir_fd=self.fd)

    def open_file(self, name: str, flags: int = os.O_RDONLY) -> int:
        """An existing regular file, not through a link; raises OSError otherwise."""
        fd = os.open(name, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=self.fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IsADirectoryError(errno.EISDIR, "not a regular file", name)
        return fd

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``, replacing what is there (a link itself, if one)."""
        os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def link(self, source: str, target: str) -> None:
        """Give ``source``'s file the name ``target`` too; fails if ``target`` exists."""
        os.link(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def sync(self) -> None:
        """Make the directory's entries (a rename) durable."""
        try:
            os.fsync(self.fd)
        except OSError as exc:  # some file systems cannot fsync a directory; the data is safe
            if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
                raise

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
