"""A store in a local folder: objects are files, atomic writes by rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from receval.errors import StoreError
from receval.storage import Store


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike[str]):
        root_str = str(root)
        if root_str.startswith("file://"):
            root_str = root_str[len("file://"):]
        self.root = Path(root_str).expanduser()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{path}: not found") from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read: {exc.strerror}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"{path}: cannot be written: {exc.strerror}") from None

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
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # an unfinished write of another process
                keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
