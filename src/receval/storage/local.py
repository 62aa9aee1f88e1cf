"""A store in a local folder: objects are files, atomic writes by rename, exclusive create by link.

Files are created with mode ``0666`` minus the process umask, like any file a user's tool writes
(not ``0600`` as :func:`tempfile.mkstemp` would make them), so a shared results folder stays
readable by the group the umask allows.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path

from receval.errors import StoreError
from receval.storage.base import TMP_SUFFIX, Store, is_temp_name, shown_key, temp_name

#: A temporary file whose writer cannot be identified (another host, an older name) counts as a
#: crashed write's leftover once it is this old.
STALE_TMP_SECONDS = 24 * 3600


def _writer_is_gone(name: str, now: float, mtime: float) -> bool:
    """Whether the temporary file ``name`` (see :func:`receval.storage.temp_name`) was left by a dead writer."""
    writer = name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
    host, _, rest = writer.partition("-")
    pid = rest.partition("-")[0]
    this_host = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
    if host == this_host and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, someone else's
        return False
    return now - mtime > STALE_TMP_SECONDS


class LocalStore(Store):
    atomic_create = True

    def __init__(self, root: str | os.PathLike[str]):
        root_str = str(root)
        if root_str.startswith("file://"):
            root_str = root_str[len("file://"):]
        self.root = Path(root_str).expanduser()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def read_if_exists(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # as exists() sees them: no file there
            return None
        except IsADirectoryError:
            raise StoreError(f"{path}: is a folder, not a file") from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read: {exc.strerror}") from None

    def _write_temp(self, path: Path, data: bytes) -> Path:
        """Write ``data`` to a new hidden sibling of ``path`` (mode 0666 & ~umask) and return it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / temp_name(path.name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp = self._write_temp(path, data)
            try:
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"{self._path(shown_key(key))}: cannot be written: {exc.strerror}") from None
        self._remove_leftovers(path.parent)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if absent: the whole file is written aside, then hard-linked into place.

        ``link(2)`` fails with EEXIST when the name exists, atomically, so of two concurrent callers
        exactly one succeeds, and nobody ever reads a half-written file.
        """
        path = self._path(key)
        try:
            tmp = self._write_temp(path, data)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                    raise
                # a filesystem without hard links: O_EXCL is still atomic (content written after)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                return True
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot be created: {exc.strerror}") from None

    def rename(self, source: str, target: str, size: int | None = None) -> None:
        src, dst = self._path(source), self._path(target)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        except OSError as exc:
            raise StoreError(f"{dst}: cannot be written: {exc.strerror}") from None

    def _remove_leftovers(self, folder: Path) -> None:
        """Remove the temporary files that crashed writes left in ``folder`` (never a live writer's)."""
        now = time.time()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if not is_temp_name(entry.name):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and _writer_is_gone(entry.name, now, entry.stat().st_mtime):
                    os.unlink(entry.path)
            except OSError:
                continue  # removed meanwhile, or not ours to remove

    def open_input(self, key: str):
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise StoreError(f"{self._path(key)}: not found") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        if base.is_file():
            return [prefix]
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if is_temp_name(name):
                    continue  # an unfinished write of another process
                keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
