"""Bundle signatures in OPA's format: file digests, the JWT that lists them, and its verification.

`.signatures.json` is `{"signatures": [<one JWT>]}`. The JWT payload is
`{"files": [{"name", "hash", "algorithm"}], "keyid"?, "scope"?, "iat"?, "iss"?}`; the header may
carry `kid`. Each file is hashed over its raw bytes, except the structured files OPA names
(`data.json`, `data.yaml`, `.manifest`, `.signatures.json`), which are parsed and re-encoded the way
OPA does before hashing: object keys sorted, no whitespace, HTML characters not escaped, JSON number
literals kept exactly as written (YAML values go through YAML -> JSON first).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import jwt
import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from governor.errors import BundleError, BundleSignatureError, ConfigurationError

SIGNATURES_FILE = ".signatures.json"
"""The name of the signatures file at the root of a bundle."""

SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "HS256",
    "HS384",
    "HS512",
)
"""The JWT algorithms a bundle may be signed with (those OPA documents)."""

HASH_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-224": hashlib.sha224,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
    "SHA-512-224": lambda: hashlib.new("sha512_224"),
    "SHA-512-256": lambda: hashlib.new("sha512_256"),
}
"""File digests OPA accepts in a signature; `build` always writes SHA-256."""

_STRUCTURED = frozenset({"data.json", "data.yaml", ".manifest", SIGNATURES_FILE})
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Number(str):
    """A JSON number kept as its literal text, so it hashes the way OPA's `json.Number` does."""


# ---------------------------------------------------------------------------------------------
# Structured documents: parse like OPA, encode canonically
# ---------------------------------------------------------------------------------------------


class _JsonSafeLoader(yaml.SafeLoader):
    """A YAML loader that leaves timestamps as strings, as OPA's YAML-to-JSON conversion does."""


_JsonSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def go_float(value: float) -> str:
    """Format a float as Go's `encoding/json` does (shortest digits, `1e+21`, `1e-7`)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{value} is not a JSON number")
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = repr(value).partition("e")
    if exponent.startswith("-0"):
        exponent = "-" + exponent[2:]
    return f"{mantissa}e{exponent}"


def yaml_to_json(value: Any, where: str) -> Any:
    """Turn a PyYAML value into the JSON value OPA's YAML loader would produce."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key is None:
                raise BundleError(f"{where}: YAML objects may not have null keys")
            if isinstance(key, bool):
                name = "true" if key else "false"
            elif isinstance(key, float):
                name = go_float(key)
            else:
                name = str(key)
            out[name] = yaml_to_json(item, where)
        return out
    if isinstance(value, list | tuple):
        return [yaml_to_json(item, where) for item in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise BundleError(f"{where}: {value} cannot be represented in JSON")
    if value is None or isinstance(value, str | int | float):
        return value
    raise BundleError(f"{where}: YAML value of type {type(value).__name__} is not JSON")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, where: str, *, literal_numbers: bool = False) -> Any:
    """Parse JSON strictly (no NaN/Infinity); with `literal_numbers`, keep numbers as text."""
    try:
        text = raw.decode("utf-8")
        if literal_numbers:
            return json.loads(
                text, parse_int=_Number, parse_float=_Number, parse_constant=_reject_constant
            )
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{where}: not valid JSON: {exc}") from None


def parse_yaml(raw: bytes, where: str) -> Any:
    """Parse YAML (1.1, like OPA) into JSON values; timestamps stay strings."""
    try:
        value = yaml.load(raw.decode("utf-8"), Loader=_JsonSafeLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BundleError(f"{where}: not valid YAML: {exc}") from None
    return yaml_to_json(value, where)


def _structured_value(raw: bytes, where: str) -> Any:
    """What OPA's `util.Unmarshal` gives: JSON with literal numbers, else YAML made JSON."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return parse_json(raw, where, literal_numbers=True)
    except BundleError:
        return parse_yaml(raw, where)


def _encode_string(text: str) -> str:
    encoded = json.dumps(_SURROGATE.sub("\ufffd", text), ensure_ascii=False)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _canonical(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _canonical(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    elif isinstance(value, _Number):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def canonical_json(value: Any) -> bytes:
    """The bytes OPA hashes for a structured file: sorted keys, compact, no HTML escaping."""
    out: list[str] = []
    _canonical(value, out)
    return "".join(out).encode("utf-8", "surrogatepass")


def file_digest(name: str, raw: bytes, algorithm: str = "SHA-256") -> str:
    """The hex digest OPA records for bundle file `name` (structured files hashed canonically)."""
    factory = HASH_ALGORITHMS.get(algorithm)
    if factory is None:
        raise BundleSignatureError(
            f"{name}: unsupported hash algorithm {algorithm!r} "
            f"(OPA supports {', '.join(HASH_ALGORITHMS)})"
        )
    digest = factory()
    if PurePosixPath(name).name in _STRUCTURED:
        digest.update(canonical_json(_structured_value(raw, name)))
    else:
        digest.update(raw)
    return str(digest.hexdigest())


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def read_key(value: str | bytes | Path, *, algorithm: str | None = None) -> bytes:
    """Key material from a CLI value: the contents of the file it names, else the value itself.

    Like OPA's `--signing-key`/`--verification-key`, a value that is not an existing file is taken
    as an HMAC shared secret. To keep a mistyped path from silently becoming a secret, a value that
    looks like a path (contains `/` or ends in `.pem`/`.key`) must exist, and for non-HMAC
    algorithms the value must always name a file.
    """
    if isinstance(value, bytes):
        return value
    path = Path(value)
    try:
        if path.is_file():
            return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read key file {value}: {exc}") from None
    if isinstance(value, Path) or "/" in value or value.endswith((".pem", ".key", ".crt")):
        raise ConfigurationError(f"key file {value} does not exist")
    if algorithm is not None and not algorithm.startswith("HS"):
        raise ConfigurationError(
            f"key file {value} does not exist ({algorithm} needs a PEM key file; "
            "only HS256/HS384/HS512 take a shared secret)"
        )
    return value.encode("utf-8")


def _is_pem(key: bytes) -> bool:
    return b"-----BEGIN " in key


def _signing_key(key: bytes, algorithm: str) -> Any:
    if algorithm not in SIGNING_ALGORITHMS:
        raise ConfigurationError(
            f"unknown signing algorithm {algorithm!r}; use one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    if algorithm.startswith("HS"):
        if _is_pem(key):
            raise ConfigurationError(
                f"{algorithm} signs with a shared secret, but the key is a PEM key; "
                "use RS256/ES256 for key pairs"
            )
        if not key:
            raise ConfigurationError(f"{algorithm} needs a non-empty shared secret")
        return key
    if not _is_pem(key):
        raise ConfigurationError(f"{algorithm} needs a PEM private key file")
    try:
        private = load_pem_private_key(key, password=None)
    except TypeError:
        raise ConfigurationError(
            "the signing key is encrypted; decrypt it first "
            "(openssl pkey -in key.pem -out plain.pem)"
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"the signing key is not a PEM private key: {exc}") from None
    if algorithm[:2] in ("RS", "PS") and not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{algorithm} needs an RSA private key, got {_kind(private)}")
    if algorithm.startswith("ES"):
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"{algorithm} needs an EC private key, got {_kind(private)}")
        if private.curve.name != _EC_CURVES[algorithm]:
            raise ConfigurationError(
                f"{algorithm} needs a {_EC_CURVES[algorithm]} key, got {private.curve.name}"
            )
    return private


def _kind(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an EC key ({key.curve.name})"
    return f"a {type(key).__name__.lstrip('_')}"


def _verification_key(key: bytes) -> tuple[Any, tuple[str, ...]]:
    """The key object and the algorithms it may verify (never HMAC with a public key)."""
    if not _is_pem(key):
        return key, ("HS256", "HS384", "HS512")
    public: Any = None
    for loader in (
        lambda: load_pem_public_key(key),
        lambda: load_pem_private_key(key, password=None).public_key(),
        lambda: x509.load_pem_x509_certificate(key).public_key(),
    ):
        try:
            public = loader()
            break
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if isinstance(public, rsa.RSAPublicKey):
        return public, ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
    if isinstance(public, ec.EllipticCurvePublicKey):
        algs = tuple(alg for alg, curve in _EC_CURVES.items() if curve == public.curve.name)
        return public, algs
    if public is None:
        raise ConfigurationError("the verification key is PEM but not a readable public key")
    raise ConfigurationError(f"unsupported verification key: {_kind(public)} (use RSA or EC)")


# ---------------------------------------------------------------------------------------------
# Signing and verification
# ---------------------------------------------------------------------------------------------


def sign_files(
    files: Mapping[str, bytes],
    *,
    key: bytes,
    algorithm: str = "RS256",
    key_id: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> bytes:
    """The `.signatures.json` document for `files` (bundle path -> bytes), signed with `key`.

    As `opa build`/`opa sign` do: extra `claims` (e.g. `scope`, `iss`, `iat`) are merged into the
    payload; without claims, `key_id` is also written as the deprecated `keyid` claim. `key_id` is
    always the JWT header `kid`.
    """
    private = _signing_key(key, algorithm)
    payload: dict[str, Any] = {
        "files": [
            {"name": name, "hash": file_digest(name, raw), "algorithm": "SHA-256"}
            for name, raw in sorted(files.items())
        ]
    }
    if claims:
        if "files" in claims:
            raise ConfigurationError("claims may not contain 'files': it lists the signed files")
        payload.update(claims)
    elif key_id:
        payload["keyid"] = key_id
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    headers = {"kid": key_id} if key_id else None
    with warnings.catch_warnings():  # short HMAC secrets: OPA accepts them, so do we
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.PyJWS().encode(body, private, algorithm=algorithm, headers=headers)
    return (json.dumps({"signatures": [token]}, indent=2) + "\n").encode("utf-8")


def verify_signatures(
    signatures: bytes,
    files: Mapping[str, bytes],
    *,
    key: bytes,
    key_id: str | None = None,
    scope: str | None = None,
    source: str = "bundle",
) -> dict[str, Any]:
    """Check `.signatures.json` against `files` as OPA does; return the verified JWT payload.

    Raises `BundleSignatureError` naming the file and the problem: bad JWT, wrong key or
    algorithm, key id or scope mismatch, a file not listed in the signature, a listed file
    missing from the bundle, or a digest mismatch.
    """
    where = f"{source}: {SIGNATURES_FILE}"
    try:
        document = json.loads(signatures.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleSignatureError(f"{where} is not valid JSON: {exc}") from None
    tokens = document.get("signatures") if isinstance(document, dict) else None
    if not isinstance(tokens, list) or not tokens:
        raise BundleSignatureError(f"{where} holds no JWT (expected exactly one in 'signatures')")
    if len(tokens) > 1:
        raise BundleSignatureError(f"{where} holds {len(tokens)} JWTs; OPA supports exactly one")
    token = tokens[0]
    if not isinstance(token, str):
        raise BundleSignatureError(f"{where}: the signature is not a JWT string")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise BundleSignatureError(f"{where}: the signature is not a valid JWT: {exc}") from None

    verifier, allowed = _verification_key(key)
    algorithm = header.get("alg")
    if algorithm not in allowed:
        raise BundleSignatureError(
            f"{where}: signed with {algorithm}, which the verification key cannot check "
            f"(it verifies {', '.join(allowed)}); is this the right key?"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            verified = jwt.PyJWS().decode_complete(token, key=verifier, algorithms=[algorithm])
    except jwt.InvalidSignatureError:
        raise BundleSignatureError(
            f"{where}: the JWT signature does not verify with the given key "
            "(wrong key, or the signature was altered)"
        ) from None
    except jwt.PyJWTError as exc:
        raise BundleSignatureError(f"{where}: cannot verify the JWT: {exc}") from None
    try:
        payload = json.loads(verified["payload"])
    except ValueError as exc:
        raise BundleSignatureError(f"{where}: the JWT payload is not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("files"), list):
        raise BundleSignatureError(f"{where}: the JWT payload has no 'files' list")

    signed_kid = header.get("kid") or payload.get("keyid")
    if key_id and signed_kid and signed_kid != key_id:
        raise BundleSignatureError(
            f"{where}: signed with key id {signed_kid!r}, but key id {key_id!r} was expected"
        )
    if (payload.get("scope") or "") != (scope or ""):
        raise BundleSignatureError(
            f"{where}: scope mismatch: the signature has scope {payload.get('scope')!r}, "
            f"expected {scope!r}"
        )
    _check_files(payload["files"], files, where)
    return payload


def _check_files(listed: list[Any], files: Mapping[str, bytes], where: str) -> None:
    expected: dict[str, tuple[str, str]] = {}
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BundleSignatureError(f"{where}: a 'files' entry has no name: {entry!r}")
        name = entry["name"].lstrip("/")
        expected[name] = (str(entry.get("hash", "")), str(entry.get("algorithm", "")))
    for name in sorted(files):
        if name not in expected:
            raise BundleSignatureError(
                f"{where}: file {name} is in the bundle but not in the signature "
                "(added after signing?)"
            )
        want, algorithm = expected.pop(name)
        if not algorithm:
            raise BundleSignatureError(f"{where}: no hash algorithm given for {name}")
        got = file_digest(name, files[name], algorithm)
        if got != want.lower():
            raise BundleSignatureError(
                f"{where}: file {name} does not match its signed digest "
                f"(modified after signing?): want {want}, got {got}"
            )
    if expected:
        raise BundleSignatureError(
            f"{where}: file(s) {', '.join(sorted(expected))} are signed but missing from the bundle"
        )
