"""Policy bundles: load Rego and data from directories or OPA bundle archives.

A `Bundle` is what every engine loads: Rego modules by path, one merged data document, and the
manifest (revision, roots). Layout follows OPA's bundle format: `.rego` files anywhere, data only
from files named `data.json` / `data.yaml`, placed in the data document at their directory's path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from governor.errors import BundleError


@dataclass(frozen=True)
class Manifest:
    """The `.manifest` of a bundle. `roots` of `[""]` means the bundle owns the whole data tree."""

    revision: str = ""
    roots: list[str] = field(default_factory=lambda: [""])
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bundle:
    """Rego modules (bundle-relative path -> source), the data document and the manifest."""

    modules: dict[str, str]
    data: dict[str, Any]
    manifest: Manifest = field(default_factory=Manifest)
    source: str = ""

    @property
    def revision(self) -> str:
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


def merge_data(base: dict[str, Any], path: Iterable[str], value: Any, where: str) -> None:
    """Deep-merge `value` into `base` at `path`; conflicting scalars are a `BundleError`."""
    node = base
    for key in path:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise BundleError(f"{where}: data at {'/'.join(path)} conflicts with a value already loaded")
        node = child
    if not isinstance(value, Mapping):
        raise BundleError(f"{where}: a data file must hold a JSON object, got {type(value).__name__}")
    for key, item in value.items():
        if key in node and isinstance(node[key], dict) and isinstance(item, Mapping):
            merge_data(node, [key], item, where)
        elif key in node and node[key] != item:
            raise BundleError(f"{where}: data key {key!r} is defined twice with different values")
        else:
            node[key] = item


def _read_data_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: cannot read data file: {exc}") from None


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
