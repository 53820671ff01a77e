"""Policy bundles: load Rego and data from directories or OPA bundle archives; build and sign them.

A `Bundle` is what every engine loads: Rego modules by path, one merged data document, and the
manifest (revision, roots). Layout follows OPA's bundle format
(https://www.openpolicyagent.org/docs/management-bundles):

- `.rego` files anywhere; data only from files named `data.json` / `data.yaml` (`data.yml` too, as
  OPA's reader accepts it), placed in the data document at their directory's path
  (`roles/data.json` becomes `data.roles`); every other file is ignored;
- an optional `.manifest` at the root: `{"revision", "roots", "rego_version", "metadata"}`.
  `roots` (default `[""]`, the whole tree) must not overlap, and every module's package and every
  data path must sit under one of them;
- an optional `.signatures.json`: `{"signatures": [<JWT>]}`, see `governor._signing`.

Two ways in:
- `load_paths(paths)`: plain files and directories, no manifest checks (like `opa eval -d`);
- `load_bundle(path)`: one bundle directory or `.tar.gz` with OPA's checks, verifying its
  signature when given a key (like `opa run -b --verification-key`). A signed bundle loaded
  without a key loads unverified (like `opa eval`); a key and no `.signatures.json` is an error.
`load_sources(paths)` picks between them per path and is what CLI commands call.

`build_bundle(src_dirs, output)` writes an OPA-compatible, reproducible `.tar.gz`: the modules at
their paths, all data merged into one root `data.json`, a `.manifest` (`rego_version: 1`) and,
with a signing key, `.signatures.json`. By default the archive also carries the standard library
(`rego/governor/**`, without its `*_test.rego` files), so a bundle directory under `bundles/`
(data and manifest only) builds into a self-contained policy bundle for OPA or our engines.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from governor._archive import is_archive, read_archive, read_directory, write_archive
from governor._signing import (
    SIGNATURES_FILE,
    SIGNING_ALGORITHMS,
    parse_json,
    parse_yaml,
    read_key,
    sign_files,
    verify_signatures,
)
from governor.errors import BundleError, BundleSignatureError, ConfigurationError

__all__ = [
    "SIGNING_ALGORITHMS",
    "Bundle",
    "BuiltBundle",
    "Manifest",
    "build_archive",
    "build_bundle",
    "load_bundle",
    "load_bundle_bytes",
    "load_paths",
    "load_sources",
    "merge_data",
    "read_key",
    "standard_library_modules",
    "standard_library_path",
]

MANIFEST_FILE = ".manifest"
DATA_FILES = ("data.json", "data.yaml", "data.yml")

KeyMaterial = str | bytes | Path
"""A key: PEM text or an HMAC secret (`str`/`bytes`), or a `Path` to a file holding one."""


@dataclass(frozen=True)
class Manifest:
    """The `.manifest` of a bundle. `roots` of `[""]` means the bundle owns the whole data tree."""

    revision: str = ""
    roots: list[str] = field(default_factory=lambda: [""])
    metadata: dict[str, Any] = field(default_factory=dict)
    rego_version: int | None = None

    @classmethod
    def parse(cls, raw: bytes, where: str) -> Manifest:
        """Read a `.manifest` file, checking each field's type; raises `BundleError`."""
        document = parse_json(raw, where)
        if not isinstance(document, dict):
            raise BundleError(f"{where}: .manifest must hold a JSON object")
        revision = document.get("revision", "")
        roots = document.get("roots", [""])
        metadata = document.get("metadata", {})
        rego_version = document.get("rego_version")
        if not isinstance(revision, str):
            raise BundleError(f"{where}: 'revision' must be a string, got {revision!r}")
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise BundleError(f"{where}: 'roots' must be a list of strings, got {roots!r}")
        if not isinstance(metadata, dict):
            raise BundleError(f"{where}: 'metadata' must be an object, got {metadata!r}")
        if rego_version not in (None, 0, 1) or isinstance(rego_version, bool):
            raise BundleError(f"{where}: 'rego_version' must be 0 or 1, got {rego_version!r}")
        versions = document.get("file_rego_versions") or {}
        if not isinstance(versions, dict):
            raise BundleError(f"{where}: 'file_rego_versions' must be an object, got {versions!r}")
        if rego_version == 0 or 0 in versions.values():
            raise BundleError(
                f"{where}: declares Rego v0 (rego_version 0); governor compiles Rego v1 only: "
                "rewrite the modules for v1 (opa fmt --v0-v1) and set rego_version to 1"
            )
        if document.get("wasm"):
            raise BundleError(f"{where}: declares Wasm modules; governor's engines run Rego only")
        return cls(
            revision=revision,
            roots=[r.strip("/") for r in roots],
            metadata=metadata,
            rego_version=rego_version,
        )

    def to_json(self) -> bytes:
        """The `.manifest` file for this manifest (stable key order)."""
        document: dict[str, Any] = {"revision": self.revision, "roots": self.roots}
        if self.rego_version is not None:
            document["rego_version"] = self.rego_version
        if self.metadata:
            document["metadata"] = self.metadata
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Bundle:
    """Rego modules (module path -> source), the data document and the manifest.

    `signed` says the bundle carried a `.signatures.json`; `verified` that it was checked against a
    key when loaded (a signed bundle loaded without a key is `signed` but not `verified`).
    """

    modules: dict[str, str]
    data: dict[str, Any]
    manifest: Manifest = field(default_factory=Manifest)
    source: str = ""
    signed: bool = False
    verified: bool = False

    @property
    def revision(self) -> str:
        """The manifest's revision ("" when none)."""
        return self.manifest.revision

    @property
    def digest(self) -> str:
        """A content hash: engines recompile only when it changes."""
        h = hashlib.sha256()
        for path in sorted(self.modules):
            h.update(path.encode() + b"\0" + self.modules[path].encode() + b"\0")
        h.update(json.dumps(self.data, sort_keys=True).encode())
        h.update(self.manifest.revision.encode())
        return h.hexdigest()


def standard_library_path() -> Path:
    """Where the standard Rego library lives: inside the wheel, or `rego/` in a source checkout."""
    packaged = Path(__file__).parent / "_rego"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rego"


def standard_library_modules() -> dict[str, Path]:
    """The standard library's runtime modules: bundle path (`governor/pii.rego`) -> file.

    `*_test.rego` files are left out: they are the library's own tests, not policy.
    """
    root = standard_library_path()
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*.rego"))
        if path.is_file() and not path.name.endswith("_test.rego")
    }


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def merge_data(base: dict[str, Any], path: Iterable[str], value: Any, where: str) -> None:
    """Deep-merge `value` into `base` at `path`; conflicting values are a `BundleError`.

    At the root `value` must be an object; below it (`roles/data.json`) any JSON value is allowed,
    as in OPA.
    """
    keys = list(path)
    if not isinstance(value, Mapping):
        if not keys:
            raise BundleError(
                f"{where}: a data file must hold a JSON object, got {type(value).__name__}"
            )
        *parents, last = keys
        parent = _data_node(base, parents, where)
        if last in parent and parent[last] != value:
            raise BundleError(f"{where}: data at {'/'.join(keys)} conflicts with a value loaded")
        parent[last] = value
        return
    node = _data_node(base, keys, where)
    for key, item in value.items():
        if key in node and isinstance(node[key], dict) and isinstance(item, Mapping):
            merge_data(node, [key], item, where)
        elif key in node and node[key] != item:
            raise BundleError(f"{where}: data key {key!r} is defined twice with different values")
        else:
            node[key] = item


def _data_node(base: dict[str, Any], path: Sequence[str], where: str) -> dict[str, Any]:
    node = base
    for key in path:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise BundleError(
                f"{where}: data at {'/'.join(path)} conflicts with a value already loaded"
            )
        node = child
    return node


def _read_data_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: cannot read data file: {exc}") from None


def _parse_data(name: str, raw: bytes, where: str) -> Any:
    if name.endswith(".json"):
        return parse_json(raw, where)
    value = parse_yaml(raw, where)
    return {} if value is None else value


def _data_json(data: Mapping[str, Any], where: str) -> bytes:
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return (text + "\n").encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise BundleError(f"{where}: data cannot be written as JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Roots
# ---------------------------------------------------------------------------------------------

_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([^#\r\n]+)", re.MULTILINE)
_REF_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[\s*"((?:[^"\\]|\\.)*)"\s*\]')


def package_path(source: str, where: str) -> str:
    """The data path of a module's package, slash-separated: `package a.b["c"]` -> `a/b/c`."""
    match = _PACKAGE.search(source)
    if match is None:
        raise BundleError(f"{where}: no package declaration found")
    text = match.group(1).strip()
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        part = _REF_PART.match(text, pos)
        if part is None or (pos == 0 and text.startswith(".")):
            raise BundleError(f"{where}: cannot read the package name {text!r}")
        parts.append(part.group(1) if part.group(1) is not None else json.loads(f'"{part[2]}"'))
        pos = part.end()
    return "/".join(parts)


def _root_contains(root: str, path: str) -> bool:
    return root == "" or path == root or path.startswith(root + "/")


def _roots_overlap(a: str, b: str) -> bool:
    return _root_contains(a, b) or _root_contains(b, a)


def validate_roots(
    roots: Sequence[str], modules: Mapping[str, str], data: Mapping[str, Any], where: str
) -> None:
    """Check OPA's manifest rules: roots do not overlap, packages and data sit under the roots.

    `modules` maps a name to show in errors to the module source. Raises `BundleError` naming
    the file (or data path) and the roots.
    """
    for i, first in enumerate(roots):
        for second in roots[i + 1 :]:
            if _roots_overlap(first, second):
                raise BundleError(
                    f"{where}: manifest roots {first!r} and {second!r} overlap; "
                    "keep only the shorter one"
                )
    if "" in roots:
        return
    shown = json.dumps(list(roots))
    for name, source in modules.items():
        package = package_path(source, name)
        if not any(_root_contains(root, package) for root in roots):
            raise BundleError(
                f"{name}: package {package.replace('/', '.')} is outside the manifest roots "
                f"{shown} of {where}; add its root to .manifest or move the module"
            )
    _validate_data(roots, data, "", where, shown)


def _validate_data(roots: Sequence[str], node: Any, path: str, where: str, shown: str) -> None:
    if path and any(_root_contains(root, path) for root in roots):
        return
    if isinstance(node, Mapping) and any(_root_contains(path, root) for root in roots):
        for key, child in node.items():
            _validate_data(roots, child, f"{path}/{key}" if path else key, where, shown)
        return
    raise BundleError(
        f"{where}: data at /{path} is outside the manifest roots {shown}; "
        "put the data file in a directory under a root or add the root to .manifest"
    )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_paths(paths: Iterable[str | Path]) -> Bundle:
    """Load every `.rego` file and `data.json`/`data.yaml` under the given files and directories."""
    modules: dict[str, str] = {}
    data: dict[str, Any] = {}
    manifest = Manifest()
    sources = []
    for raw in paths:
        root = Path(raw)
        sources.append(str(root))
        if not root.exists():
            raise BundleError(f"{root}: no such file or directory")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            rel = file.relative_to(root) if root.is_dir() else Path(file.name)
            if file.suffix == ".rego":
                modules[str(file)] = file.read_text(encoding="utf-8")
            elif file.name in ("data.json", "data.yaml", "data.yml"):
                merge_data(data, rel.parent.parts, _read_data_file(file), str(file))
            elif file.name == ".manifest" and root.is_dir() and file.parent == root:
                try:
                    raw_manifest = json.loads(file.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise BundleError(f"{file}: .manifest is not valid JSON: {exc}") from None
                manifest = Manifest(
                    revision=str(raw_manifest.get("revision", "")),
                    roots=list(raw_manifest.get("roots", [""])),
                    metadata=dict(raw_manifest.get("metadata", {})),
                )
    return Bundle(modules=modules, data=data, manifest=manifest, source=", ".join(sources))


def _key_bytes(key: KeyMaterial) -> bytes:
    if isinstance(key, Path):
        try:
            return key.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read key file {key}: {exc}") from None
    return key.encode("utf-8") if isinstance(key, str) else key


@dataclass
class _Contents:
    """A bundle's files sorted into what they mean."""

    modules: dict[str, str] = field(default_factory=dict)  # bundle path -> source
    data: dict[str, Any] = field(default_factory=dict)
    manifest: Manifest | None = None
    ignored: list[str] = field(default_factory=list)


def _sort_files(files: Mapping[str, bytes], where: str, name_of: Callable[[str], str]) -> _Contents:
    contents = _Contents()
    for name in sorted(files):
        raw = files[name]
        base = PurePosixPath(name).name
        shown = name_of(name)
        if name.endswith(".rego"):
            try:
                contents.modules[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BundleError(f"{shown}: a Rego module must be UTF-8 text") from None
        elif base in DATA_FILES:
            parts = PurePosixPath(name).parent.parts
            merge_data(contents.data, parts, _parse_data(base, raw, shown), shown)
        elif name == MANIFEST_FILE:
            contents.manifest = Manifest.parse(raw, shown)
        elif name == "patch.json":
            raise BundleError(f"{where}: delta bundles (patch.json) are not supported")
        elif name != SIGNATURES_FILE:
            contents.ignored.append(name)
    return contents


def _verify(
    files: Mapping[str, bytes],
    where: str,
    verification_key: KeyMaterial | None,
    key_id: str | None,
    scope: str | None,
) -> tuple[bool, bool]:
    """Verify `.signatures.json` when a key is given; return (signed, verified)."""
    signatures = files.get(SIGNATURES_FILE)
    if verification_key is None:
        return signatures is not None, False
    if signatures is None:
        raise BundleSignatureError(
            f"{where}: a verification key was given but the bundle has no {SIGNATURES_FILE}; "
            "sign it (governor build --signing-key KEY) or load it without a key"
        )
    signed = {name: raw for name, raw in files.items() if name != SIGNATURES_FILE}
    verify_signatures(
        signatures,
        signed,
        key=_key_bytes(verification_key),
        key_id=key_id,
        scope=scope,
        source=where,
    )
    return True, True


def _assemble(
    files: Mapping[str, bytes],
    where: str,
    name_of: Callable[[str], str],
    *,
    verification_key: KeyMaterial | None,
    key_id: str | None,
    scope: str | None,
    include_stdlib: bool,
) -> Bundle:
    signed, verified = _verify(files, where, verification_key, key_id, scope)
    contents = _sort_files(files, where, name_of)
    manifest = contents.manifest or Manifest()
    modules = {name_of(name): source for name, source in contents.modules.items()}
    if include_stdlib:
        for rel, path in _stdlib_files().items():
            if rel in contents.modules:
                raise BundleError(
                    f"{where} already contains {rel}, a module of the standard library (built "
                    "archives carry it); load it without include_stdlib"
                )
            modules[str(path)] = path.read_text(encoding="utf-8")
    validate_roots(manifest.roots, modules, contents.data, where)
    return Bundle(
        modules=modules,
        data=contents.data,
        manifest=manifest,
        source=where,
        signed=signed,
        verified=verified,
    )


def _stdlib_files() -> dict[str, Path]:
    modules = standard_library_modules()
    if not modules:
        raise BundleError(
            f"the standard library at {standard_library_path()} holds no .rego modules; "
            "restore rego/governor/ (or build and load without the standard library)"
        )
    return modules


def load_bundle(
    path: str | Path,
    *,
    verification_key: KeyMaterial | None = None,
    key_id: str | None = None,
    scope: str | None = None,
    include_stdlib: bool = False,
) -> Bundle:
    """Load one OPA bundle: a directory or a `.tar.gz`, with OPA's manifest and roots checks.

    With `verification_key` (PEM public key, or the HMAC secret; a `Path` is read) the bundle must
    carry a `.signatures.json` whose JWT verifies, lists exactly the bundle's files and matches
    every file's digest, and whose `scope` equals `scope`; `key_id`, when given, must match the
    key id the bundle was signed with. `include_stdlib` adds the standard library's modules (for
    bundle directories under `bundles/`, which carry data and a manifest only); they must sit
    under the manifest's roots like the bundle's own modules.

    Raises `BundleError` (unreadable, bad manifest, roots violated, data conflict) or
    `BundleSignatureError` (verification failed).
    """
    root = Path(path)
    if root.is_dir():
        files = _read_bundle_dir(root, verifying=verification_key is not None)
    elif root.is_file():
        try:
            raw = root.read_bytes()
        except OSError as exc:
            raise BundleError(f"{root}: cannot read: {exc}") from None
        return load_bundle_bytes(
            raw,
            source=str(root),
            verification_key=verification_key,
            key_id=key_id,
            scope=scope,
            include_stdlib=include_stdlib,
        )
    else:
        raise BundleError(f"{root}: no such bundle directory or .tar.gz file")
    return _assemble(
        files,
        str(root),
        _under(root),
        verification_key=verification_key,
        key_id=key_id,
        scope=scope,
        include_stdlib=include_stdlib,
    )


def load_bundle_bytes(
    archive: bytes,
    *,
    source: str = "bundle.tar.gz",
    verification_key: KeyMaterial | None = None,
    key_id: str | None = None,
    scope: str | None = None,
    include_stdlib: bool = False,
) -> Bundle:
    """`load_bundle` for a `.tar.gz` held in memory (a download); `source` names it in errors.

    Module paths are `<source>/<path in the archive>`.
    """
    files = read_archive(archive, source)
    return _assemble(
        files,
        source,
        lambda name: f"{source}/{name}",
        verification_key=verification_key,
        key_id=key_id,
        scope=scope,
        include_stdlib=include_stdlib,
    )


def _meaningful(name: str) -> bool:
    """Whether a bundle file matters when no signature is checked (others are never read)."""
    base = PurePosixPath(name).name
    return name.endswith(".rego") or base in DATA_FILES or name in _SPECIAL


_SPECIAL = frozenset({MANIFEST_FILE, SIGNATURES_FILE, "patch.json"})


def _read_bundle_dir(root: Path, *, verifying: bool) -> dict[str, bytes]:
    """A bundle directory's files: those that count, or all of them to check a signature."""
    files, _ = read_directory(root, _meaningful)
    if verifying and SIGNATURES_FILE in files:
        files, _ = read_directory(root)
    return files


def _is_bundle_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / MANIFEST_FILE).is_file() or (path / SIGNATURES_FILE).is_file()
    )


def load_sources(
    paths: Iterable[str | Path],
    *,
    verification_key: KeyMaterial | None = None,
    key_id: str | None = None,
    scope: str | None = None,
) -> Bundle:
    """Load what a CLI `-d PATH...` names, as one `Bundle`: the helper for every command.

    A `.tar.gz` and a directory with a `.manifest` or `.signatures.json` load as bundles
    (`load_bundle`: roots checked); other files and directories load as plain policy and data
    (`load_paths`). With `verification_key`, every path must be a signed bundle and is verified.
    Bundles' roots must not overlap each other. The result's revision joins the bundles'
    revisions with `,`.
    """
    bundles: list[Bundle] = []
    plain: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BundleError(f"{path}: no such file or directory")
        if verification_key is not None and path.is_file() and not is_archive(path):
            raise BundleSignatureError(
                f"{path}: a single file cannot be verified; pass the signed bundle "
                "(.tar.gz or directory with .signatures.json)"
            )
        if verification_key is not None or is_archive(path) or _is_bundle_dir(path):
            bundle = load_bundle(
                path, verification_key=verification_key, key_id=key_id, scope=scope
            )
            bundles.append(bundle)
        else:
            plain.append(path)
    _check_bundle_roots(bundles)
    parts = bundles + ([load_paths(plain)] if plain else [])
    if len(parts) == 1:
        return parts[0]
    return _combine(parts)


def _check_bundle_roots(bundles: Sequence[Bundle]) -> None:
    for i, first in enumerate(bundles):
        for second in bundles[i + 1 :]:
            for a in first.manifest.roots:
                for b in second.manifest.roots:
                    if _roots_overlap(a, b):
                        raise BundleError(
                            f"bundles {first.source} and {second.source} have overlapping roots "
                            f"({a!r} and {b!r}) and cannot be loaded together; give each bundle "
                            "its own roots in .manifest"
                        )


def _combine(parts: Sequence[Bundle]) -> Bundle:
    modules: dict[str, str] = {}
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for part in parts:
        for name, source in part.modules.items():
            if modules.get(name, source) != source:
                raise BundleError(f"{name}: loaded twice with different contents")
            modules[name] = source
        merge_data(data, [], part.data, part.source)
        metadata.update(part.manifest.metadata)
    revisions = [p.revision for p in parts if p.revision]
    roots = sorted({r for p in parts for r in p.manifest.roots})
    return Bundle(
        modules=modules,
        data=data,
        manifest=Manifest(revision=",".join(revisions), roots=roots or [""], metadata=metadata),
        source=", ".join(p.source for p in parts),
        signed=all(p.signed for p in parts),
        verified=all(p.verified for p in parts),
    )


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltBundle:
    """A built bundle archive and what went into it."""

    archive: bytes
    manifest: Manifest
    files: tuple[str, ...]
    """Archive entries, sorted (`.manifest`, `.signatures.json`, `data.json`, modules)."""
    modules: tuple[str, ...]
    """Bundle paths of the Rego modules (the standard library's included)."""
    stdlib: tuple[str, ...] = ()
    """Bundle paths of the modules that come from the standard library."""
    ignored: tuple[str, ...] = ()
    """Source files left out: neither `.rego`, nor a data file, nor `.manifest`."""
    signing_algorithm: str | None = None
    key_id: str | None = None

    @property
    def signed(self) -> bool:
        """True when the archive carries `.signatures.json`."""
        return self.signing_algorithm is not None

    @property
    def size(self) -> int:
        """The archive's size in bytes."""
        return len(self.archive)

    @property
    def sha256(self) -> str:
        """The archive's SHA-256 (hex): a stable ETag, since builds are reproducible."""
        return hashlib.sha256(self.archive).hexdigest()

    def write(self, output: str | Path) -> None:
        """Write the archive to `output` atomically (parent directories created)."""
        target = Path(output)
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".governor-build-", dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.archive)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a bundle is meant to be served
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise BundleError(f"{target}: cannot write the bundle: {exc}") from None


def _merged_manifest(
    manifests: Sequence[tuple[str, Manifest]],
    revision: str | None,
    roots: Sequence[str] | None,
) -> Manifest:
    metadata: dict[str, Any] = {}
    for where, manifest in manifests:
        for key, value in manifest.metadata.items():
            if key in metadata and metadata[key] != value:
                raise BundleError(f"{where}: manifest metadata {key!r} conflicts with another")
            metadata[key] = value
    if revision is None:
        revisions = sorted({m.revision for _, m in manifests if m.revision})
        if len(revisions) > 1:
            raise BundleError(
                f"the sources declare different revisions {revisions}; pass one with --revision"
            )
        revision = revisions[0] if revisions else ""
    if roots is None:
        declared = sorted({r for _, m in manifests for r in m.roots})
        roots = [""] if not declared or "" in declared else declared
    return Manifest(
        revision=revision,
        roots=[r.strip("/") for r in roots],
        metadata=metadata,
        rego_version=1,
    )


def build_archive(
    src_dirs: Sequence[str | Path],
    *,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    signing_key: KeyMaterial | None = None,
    signing_alg: str = "RS256",
    key_id: str | None = None,
    claims: Mapping[str, Any] | None = None,
    include_stdlib: bool = True,
    verification_key: KeyMaterial | None = None,
) -> BuiltBundle:
    """Build an OPA bundle archive in memory from bundle directories (or `.tar.gz` files).

    Sources are read like `load_bundle`: modules keep their path relative to their source, data
    files are merged and written as one root `data.json`, `.manifest`s are merged (the revision
    and roots arguments win; roots default to the union of the sources' roots, else `[""]`).
    `include_stdlib` adds the standard library's modules under `governor/`. A source that carries
    a `.signatures.json` is verified with `verification_key` when given (unsigned sources are
    fine: they are what is being signed); a source's signature is never copied.

    With `signing_key` (PEM private key for RS*/PS*/ES*, shared secret for HS*) the archive gets a
    `.signatures.json` over every file, in OPA's format; `claims` (e.g. `{"scope": "write",
    "iss": "ci"}`) go into the JWT payload and `key_id` into its `kid` header. When both signing
    and `verification_key` are given, the new signature is checked against it.

    The same inputs give a byte-identical archive (RS*/HS* signatures are deterministic; PS* and
    ES* signatures are randomized by design, so signed PS/ES archives differ between builds).
    """
    if not src_dirs and not include_stdlib:
        raise BundleError("nothing to build: give at least one source directory")
    modules: dict[str, tuple[str, bytes]] = {}  # bundle path -> (shown source, bytes)
    data: dict[str, Any] = {}
    manifests: list[tuple[str, Manifest]] = []
    ignored: list[str] = []
    for src in src_dirs:
        root = Path(src)
        skipped: list[str] = []
        if root.is_dir():
            files, skipped = read_directory(root, _meaningful)
            if verification_key is not None and SIGNATURES_FILE in files:
                files, skipped = read_directory(root)
        elif root.is_file() and is_archive(root):
            files = read_archive(root.read_bytes(), str(root))
        else:
            raise BundleError(f"{root}: no such directory or .tar.gz bundle")
        if verification_key is not None and SIGNATURES_FILE in files:
            _verify(files, str(root), verification_key, key_id, None)
        contents = _sort_files(files, str(root), _under(root))
        for name, source in contents.modules.items():
            _add_module(modules, name, str(root / name), source.encode("utf-8"))
        merge_data(data, [], contents.data, str(root))
        if contents.manifest is not None:
            manifests.append((str(root / MANIFEST_FILE), contents.manifest))
        ignored.extend(str(root / name) for name in sorted(contents.ignored + skipped))
    stdlib = _stdlib_files() if include_stdlib else {}
    for rel, path in stdlib.items():
        _add_module(modules, rel, str(path), path.read_bytes())

    manifest = _merged_manifest(manifests, revision, roots)
    sources = {shown: raw.decode("utf-8") for shown, raw in modules.values()}
    validate_roots(manifest.roots, sources, data, "the built bundle")

    files_out: dict[str, bytes] = {name: raw for name, (_, raw) in modules.items()}
    files_out[MANIFEST_FILE] = manifest.to_json()
    files_out["data.json"] = _data_json(data, "the built bundle")
    if signing_key is not None:
        secret = _key_bytes(signing_key)
        signatures = sign_files(
            files_out, key=secret, algorithm=signing_alg, key_id=key_id, claims=claims
        )
        if verification_key is not None:
            verify_signatures(
                signatures,
                files_out,
                key=_key_bytes(verification_key),
                key_id=key_id,
                scope=(claims or {}).get("scope"),
                source="the built bundle",
            )
        files_out[SIGNATURES_FILE] = signatures
    return BuiltBundle(
        archive=write_archive(files_out),
        manifest=manifest,
        files=tuple(sorted(files_out)),
        modules=tuple(sorted(modules)),
        stdlib=tuple(sorted(stdlib)),
        ignored=tuple(ignored),
        signing_algorithm=signing_alg if signing_key is not None else None,
        key_id=key_id,
    )


def _under(root: Path) -> Callable[[str], str]:
    def name_of(name: str) -> str:
        return str(root / name)

    return name_of


def _add_module(modules: dict[str, tuple[str, bytes]], name: str, shown: str, raw: bytes) -> None:
    if name in modules:
        raise BundleError(
            f"{shown} and {modules[name][0]} would both be {name} in the bundle; "
            "rename one (a bundle directory must not repeat the standard library's paths)"
        )
    modules[name] = (shown, raw)


def build_bundle(
    src_dirs: Sequence[str | Path],
    output: str | Path,
    *,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    signing_key: KeyMaterial | None = None,
    signing_alg: str = "RS256",
    key_id: str | None = None,
    claims: Mapping[str, Any] | None = None,
    include_stdlib: bool = True,
    verification_key: KeyMaterial | None = None,
) -> BuiltBundle:
    """`build_archive`, then write the archive to `output` atomically (parents created)."""
    built = build_archive(
        src_dirs,
        revision=revision,
        roots=roots,
        signing_key=signing_key,
        signing_alg=signing_alg,
        key_id=key_id,
        claims=claims,
        include_stdlib=include_stdlib,
        verification_key=verification_key,
    )
    built.write(output)
    return built
