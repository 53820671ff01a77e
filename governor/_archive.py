"""Reading and writing bundle files: directories and deterministic gzipped tarballs.

A bundle's files are handled as a mapping of bundle-relative POSIX paths (`governor/pii.rego`,
`.manifest`) to bytes. Written archives are reproducible: entries sorted by path, fixed mtime,
owner and mode, no gzip timestamp or file name, so the same files give byte-identical archives.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from governor.errors import BundleError

MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
"""Uncompressed size limit when reading an archive (OPA's default, a guard against gzip bombs)."""

ARCHIVE_MTIME = 0
"""The modification time written for every entry of a built archive."""

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
"""File names treated as bundle archives."""


def is_archive(path: Path) -> bool:
    """True when `path` names a gzipped-tarball bundle (`.tar.gz` or `.tgz`)."""
    return path.name.endswith(ARCHIVE_SUFFIXES)


def normalize_name(name: str, where: str) -> str:
    """A safe bundle-relative path: no leading `/` or `./`, no `..`, `/` separators."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", ".")]
    if not parts or any(p == ".." for p in parts):
        raise BundleError(f"{where}: entry {name!r} is not a path inside the bundle")
    return "/".join(parts)


def read_directory(
    root: Path, include: Callable[[str], bool] | None = None
) -> tuple[dict[str, bytes], list[str]]:
    """The regular files under `root` by relative path, and the names `include` turned down.

    Files `include` refuses are not read (a bundle directory may hold a large `.git`).
    """
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        if include is not None and not include(name):
            skipped.append(name)
            continue
        try:
            files[name] = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"{path}: cannot read: {exc}") from None
    return files, skipped


def read_archive(data: bytes, where: str) -> dict[str, bytes]:
    """The regular files of a gzipped tarball; links, devices and `..` paths are refused."""
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError(
                        f"{where}: entry {member.name!r} is not a regular file "
                        "(links and devices are not allowed in bundles)"
                    )
                name = normalize_name(member.name, where)
                if name in files:
                    raise BundleError(f"{where}: entry {name} appears twice")
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{where}: more than {MAX_BUNDLE_BYTES} bytes uncompressed")
                extracted = archive.extractfile(member)
                files[name] = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise BundleError(f"{where}: not a readable .tar.gz bundle: {exc}") from None
    return files


def write_archive(files: Mapping[str, bytes]) -> bytes:
    """A reproducible gzipped tarball of `files` (bundle path -> bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            content = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = ARCHIVE_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            archive.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
