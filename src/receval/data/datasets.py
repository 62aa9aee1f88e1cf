"""Registry of the public recommender datasets receval knows, and their download.

The archives are published by GroupLens (https://grouplens.org/datasets/). Their licences forbid (MovieLens
100K, 1M, 10M, 20M, 25M, 32M) or restrict redistribution, so receval never ships them: it downloads an archive
from the publisher, verifies it, and extracts it under a data folder (``--data-dir``, env ``RECEVAL_DATA``, or
``~/.cache/receval``). See ``docs/datasets.md``.

Checksums: GroupLens publishes an MD5 next to most archives (``<archive>.zip.md5``); SHA-256 values below are
those recorded by several independent public projects that downloaded the same archive. A value we could not
establish is ``None``; the download then verifies what is known (size, MD5) and records the SHA-256 it computed
in ``<folder>/.receval-download.json`` so that a later copy can be compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from receval.errors import ConfigError, InputError

ENV_DATA_DIR = "RECEVAL_DATA"
_GROUPLENS = "https://files.grouplens.org/datasets"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One downloadable dataset archive.

    Parameters
    ----------
    name : str
        Name used on the command line (``ml-100k``).
    url : str
        Where the publisher serves the zip file.
    folder : str
        Canonical folder under the data dir that holds the extracted files.
    marker : str
        A file that must exist in ``folder`` for the dataset to count as present.
    sha256, md5 : str or None
        Expected digests of the zip file, ``None`` when not established.
    size : int or None
        Expected size of the zip file in bytes, ``None`` when not established.
    aliases : tuple of str
        Other folder names the archive extracts to or users commonly use (``ml-10M100K``).
    terms : str
        One-line summary of the licence.
    """

    name: str
    url: str
    folder: str
    marker: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    aliases: tuple[str, ...] = ()
    terms: str = ""

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name or f"{self.name}.zip"


_ML_TERMS = "research use only, cite Harper & Konstan 2015, no redistribution without GroupLens permission, no commercial use"

ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in (
        Archive(
            "ml-100k",
            f"{_GROUPLENS}/movielens/ml-100k.zip",
            "ml-100k",
            "u.data",
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
            size=4_924_029,
            terms=_ML_TERMS,
        ),
        Archive(
            "ml-latest-small",
            f"{_GROUPLENS}/movielens/ml-latest-small.zip",
            "ml-latest-small",
            "ratings.csv",
            # The "latest" archives are rebuilt from time to time; this is the 2018-09-26 release.
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            terms="research use, cite Harper & Konstan 2015, redistribution only under the same licence, no commercial use",
        ),
        Archive(
            "ml-1m",
            f"{_GROUPLENS}/movielens/ml-1m.zip",
            "ml-1m",
            "ratings.dat",
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
            terms=_ML_TERMS,
        ),
        Archive(
            "ml-10m",
            f"{_GROUPLENS}/movielens/ml-10m.zip",
            "ml-10m",
            "ratings.dat",
            md5="ce571fd55effeba0271552578f2648bd",
            aliases=("ml-10M100K",),
            terms=_ML_TERMS,
        ),
        Archive(
            "ml-20m",
            f"{_GROUPLENS}/movielens/ml-20m.zip",
            "ml-20m",
            "ratings.csv",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
            terms=_ML_TERMS,
        ),
        Archive(
            "ml-25m",
            f"{_GROUPLENS}/movielens/ml-25m.zip",
            "ml-25m",
            "ratings.csv",
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
            size=261_978_986,
            terms=_ML_TERMS,
        ),
        Archive(
            "ml-32m",
            f"{_GROUPLENS}/movielens/ml-32m.zip",
            "ml-32m",
            "ratings.csv",
            sha256="e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
            size=238_950_008,
            terms=_ML_TERMS,
        ),
        Archive(
            "lastfm-2k",
            f"{_GROUPLENS}/hetrec2011/hetrec2011-lastfm-2k.zip",
            "hetrec2011-lastfm-2k",
            "user_artists.dat",
            sha256="6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c",
            terms="non-commercial use only, cite Last.fm and HetRec 2011",
        ),
    )
}


def archive(name: str) -> Archive:
    """Return the registry entry of ``name`` or raise ConfigError listing the known names."""
    try:
        return ARCHIVES[name]
    except KeyError:
        raise ConfigError(f"unknown dataset '{name}' (known: {', '.join(ARCHIVES)}, synthetic)") from None


def default_data_dir() -> Path:
    """``$RECEVAL_DATA`` if set, else ``~/.cache/receval``."""
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "receval"


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path | None:
    """Where the files of ``name`` are, or ``None`` when they are not there.

    ``data_dir`` may be the parent folder (``data_dir/ml-100k/u.data``) or the dataset folder itself
    (``data_dir/u.data``); the canonical folder name and its aliases are tried.
    """
    entry = archive(name)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    for candidate in (base / entry.folder, *(base / a for a in entry.aliases), base):
        if (candidate / entry.marker).is_file():
            return candidate
    return None


def download(
    name: str,
    data_dir: str | Path | None = None,
    progress: bool = True,
    *,
    force: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Download, verify and extract dataset ``name``; return its folder.

    Does nothing when the dataset is already present (unless ``force``). Without network access raises
    :class:`~receval.errors.InputError` with one line that says how to point receval at a local copy.
    """
    entry = archive(name)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if not force:
        found = dataset_folder(name, base)
        if found is not None:
            return found
    return fetch_archive(entry, base, progress=progress, timeout=timeout)


def fetch_archive(entry: Archive, data_dir: str | Path, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Stream ``entry.url`` to a temporary file, verify size and digests, extract to ``data_dir/entry.folder``.

    The folder appears only when everything succeeded (extracted next to it, then renamed), so an interrupted
    download never leaves a half dataset that :func:`dataset_folder` would accept.
    """
    base = Path(data_dir).expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{base}: cannot create the data folder: {exc.strerror or exc}") from None
    target = base / entry.folder
    with tempfile.TemporaryDirectory(prefix=f".{entry.name}-", dir=base) as tmp:
        zip_path = Path(tmp) / entry.filename
        digests = _stream(entry, zip_path, progress=progress, timeout=timeout)
        _verify(entry, digests)
        extracted = Path(tmp) / "extracted"
        root = _extract(entry, zip_path, extracted)
        (root / ".receval-download.json").write_text(json.dumps({"url": entry.url, **digests}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)
    return target


def _no_network(entry: Archive, reason: object) -> InputError:
    return InputError(
        f"cannot download {entry.name} from {entry.url} ({reason}): no network access? Download "
        f"{entry.filename} on a machine that has it, unzip it into a folder DIR (giving DIR/{entry.folder}/"
        f"{entry.marker}) and give DIR as data_dir or set {ENV_DATA_DIR}=DIR", option="data_dir",
    )


def _opener(url: str) -> urllib.request.OpenerDirector:
    # A proxy configured for the outside world cannot reach a server on this machine.
    host = urllib.parse.urlparse(url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _stream(entry: Archive, dest: Path, *, progress: bool, timeout: float) -> dict[str, object]:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    done = 0
    try:
        with _opener(entry.url).open(entry.url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or entry.size
            shown = -1
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                sha256.update(chunk)
                md5.update(chunk)
                done += len(chunk)
                if progress and total:
                    percent = min(100, done * 100 // total)
                    if percent // 5 != shown // 5:
                        shown = percent
                        print(f"\r{entry.filename}: {percent:3d}% of {total / 1e6:.1f} MB", end="", file=sys.stderr)
            if progress and total:
                print(file=sys.stderr)
    except urllib.error.HTTPError as exc:
        raise InputError(f"cannot download {entry.name} from {entry.url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _no_network(entry, getattr(exc.reason, "strerror", None) or exc.reason) from None
    except (TimeoutError, ConnectionError) as exc:
        raise _no_network(entry, exc.strerror or type(exc).__name__) from None
    except OSError as exc:  # disk full, permission: not a network problem
        raise InputError(f"{dest.parent}: cannot write {entry.filename}: {exc.strerror or exc}") from None
    return {"bytes": done, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def _verify(entry: Archive, digests: dict[str, object]) -> None:
    checks = (("size", entry.size, digests["bytes"]), ("SHA-256", entry.sha256, digests["sha256"]),
              ("MD5", entry.md5, digests["md5"]))
    for what, expected, got in checks:
        if expected is not None and expected != got:
            raise InputError(
                f"{entry.url}: {what} mismatch (expected {expected}, got {got}); the download was discarded — "
                f"the publisher may have changed the archive or the transfer was corrupted"
            )


def _extract(entry: Archive, zip_path: Path, into: Path) -> Path:
    """Extract safely and return the folder that holds the data files."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            resolved = into.resolve()
            for member in zf.namelist():
                # Refuse absolute paths and ``..``: a malicious archive must not write outside ``into``.
                dest = (into / member).resolve()
                if dest != resolved and resolved not in dest.parents:
                    raise InputError(f"{entry.url}: archive member '{member}' points outside the target folder")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{entry.url}: not a valid zip archive ({exc})") from None
    # GroupLens archives hold one top folder (``ml-100k/``, ``ml-10M100K/``); HetRec puts files at the root.
    children = [c for c in into.iterdir() if c.name != "__MACOSX"]
    root = children[0] if len(children) == 1 and children[0].is_dir() else into
    if not (root / entry.marker).is_file():
        raise InputError(f"{entry.url}: archive does not contain {entry.marker}")
    return root
