"""Bundles: loading directories and archives with OPA's rules, building, signing, verifying."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from governor._signing import file_digest, go_float
from governor.bundle import (
    build_bundle,
    load_bundle,
    load_bundle_bytes,
    load_paths,
    load_sources,
    merge_data,
    read_key,
    standard_library_modules,
)
from governor.errors import BundleError, BundleSignatureError, ConfigurationError

POLICY = """package acme.authz

allow if input.user in data.acme.admins
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write(
        tmp_path / "src",
        {
            ".manifest": json.dumps({"revision": "r1", "roots": ["acme"]}),
            "acme/authz.rego": POLICY,
            "acme/data.json": json.dumps({"admins": ["ada"], "limits": {"max": 3}}),
            "acme/teams/data.yaml": "support:\n  - bob\n",
            "README.md": "not policy",
            "acme/other.json": json.dumps({"ignored": True}),
        },
    )


def pem_private(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def pem_public(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    """algorithm -> (signing key, verification key)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    secret = b"a-shared-secret-of-at-least-32-bytes!!"
    return {
        "RS256": (pem_private(rsa_key), pem_public(rsa_key)),
        "PS256": (pem_private(rsa_key), pem_public(rsa_key)),
        "ES256": (pem_private(ec_key), pem_public(ec_key)),
        "HS256": (secret, secret),
    }


def rewrite(archive: Path, change: Callable[[dict[str, bytes]], object]) -> None:
    """Rewrite a .tar.gz with the standard library's tarfile after `change(files)`."""
    with tarfile.open(archive, "r:gz") as tar:
        files = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    change(files)
    with tarfile.open(archive, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


# --- loading ----------------------------------------------------------------------------------


def test_directory_bundle_loads_modules_data_by_directory_and_manifest(src: Path) -> None:
    bundle = load_bundle(src)
    assert list(bundle.modules) == [str(src / "acme/authz.rego")]
    assert bundle.data == {
        "acme": {"admins": ["ada"], "limits": {"max": 3}, "teams": {"support": ["bob"]}}
    }
    assert bundle.manifest.revision == "r1"
    assert bundle.manifest.roots == ["acme"]
    assert not bundle.signed and not bundle.verified


def test_tar_gz_bundle_loads_the_same_as_its_directory(src: Path, tmp_path: Path) -> None:
    built = build_bundle([src], tmp_path / "b.tar.gz", include_stdlib=False)
    bundle = load_bundle(tmp_path / "b.tar.gz")
    assert bundle.data == load_bundle(src).data
    assert bundle.revision == "r1"
    assert list(bundle.modules) == [f"{tmp_path / 'b.tar.gz'}/acme/authz.rego"]
    assert built.files == (".manifest", "acme/authz.rego", "data.json")
    assert str(src / "README.md") in built.ignored


def test_nested_data_file_may_hold_any_json_value(tmp_path: Path) -> None:
    write(tmp_path, {"roles/data.json": '["a", "b"]', "data.json": '{"x": 1}'})
    assert load_bundle(tmp_path).data == {"roles": ["a", "b"], "x": 1}


def test_yaml_timestamps_stay_strings_as_in_opa(tmp_path: Path) -> None:
    write(tmp_path, {"data.yaml": "since: 2024-01-02\nflag: yes\n"})
    assert load_bundle(tmp_path).data == {"since": "2024-01-02", "flag": True}


def test_conflicting_data_files_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, {"data.json": '{"a": {"b": 1}}', "a/data.json": '{"b": 2}'})
    with pytest.raises(BundleError, match="'b' is defined twice"):
        load_bundle(tmp_path)


def test_data_files_merge_when_they_do_not_conflict(tmp_path: Path) -> None:
    write(tmp_path, {"data.json": '{"a": {"b": 1}}', "a/data.json": '{"c": 2}'})
    assert load_bundle(tmp_path).data == {"a": {"b": 1, "c": 2}}


def test_merge_data_keeps_its_contract_for_root_values() -> None:
    base: dict[str, Any] = {}
    merge_data(base, ["x"], {"y": 1}, "f")
    with pytest.raises(BundleError, match="must hold a JSON object"):
        merge_data(base, [], [1], "f")


def test_load_paths_still_loads_plain_files(src: Path) -> None:
    bundle = load_paths([src])
    assert bundle.manifest.revision == "r1"
    assert bundle.data["acme"]["admins"] == ["ada"]


# --- roots ------------------------------------------------------------------------------------


def test_package_outside_the_roots_is_rejected_naming_file_and_roots(src: Path) -> None:
    write(src, {"other/x.rego": "package other.x\n\nallow := true\n"})
    with pytest.raises(BundleError) as err:
        load_bundle(src)
    assert "other/x.rego" in str(err.value)
    assert "package other.x is outside the manifest roots" in str(err.value)
    assert '["acme"]' in str(err.value)


def test_data_outside_the_roots_is_rejected(src: Path) -> None:
    write(src, {"billing/data.json": '{"x": 1}'})
    with pytest.raises(BundleError, match=r"data at /billing is outside the manifest roots"):
        load_bundle(src)


def test_overlapping_roots_are_rejected(src: Path) -> None:
    write(src, {".manifest": json.dumps({"roots": ["acme", "acme/authz"]})})
    with pytest.raises(BundleError, match="roots 'acme' and 'acme/authz' overlap"):
        load_bundle(src)


def test_roots_contain_paths_segment_by_segment(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".manifest": json.dumps({"roots": ["acme/authz"]}),
            "acmecorp/data.json": "{}",
            "x.rego": 'package acme["authz"].rules\n\nallow := true\n',
            "data.json": '{"acme": {"authz": {"k": 1}}}',
        },
    )
    with pytest.raises(BundleError, match="data at /acmecorp is outside"):
        load_bundle(tmp_path)
    (tmp_path / "acmecorp/data.json").unlink()
    assert load_bundle(tmp_path).data == {"acme": {"authz": {"k": 1}}}


def test_scalar_data_on_the_way_to_a_root_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, {".manifest": '{"roots": ["a/b"]}', "data.json": '{"a": 5}'})
    with pytest.raises(BundleError, match="data at /a is outside"):
        load_bundle(tmp_path)


# --- manifest ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"roots": "acme"}', "'roots' must be a list of strings"),
        ('{"revision": 7}', "'revision' must be a string"),
        ('{"rego_version": 0}', "Rego v1 only"),
        ('{"metadata": []}', "'metadata' must be an object"),
        ('{"wasm": [{"entrypoint": "a", "module": "p.wasm"}]}', "Wasm"),
        ("[]", "must hold a JSON object"),
    ],
)
def test_manifest_errors_name_the_field(src: Path, manifest: str, message: str) -> None:
    (src / ".manifest").write_text(manifest)
    with pytest.raises(BundleError, match=message) as err:
        load_bundle(src)
    assert ".manifest" in str(err.value)


def test_delta_bundles_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"patch.json": '{"data": []}'})
    with pytest.raises(BundleError, match="delta bundles"):
        load_bundle(tmp_path)


# --- archives ---------------------------------------------------------------------------------


def test_archive_entries_outside_the_bundle_are_refused(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.rego")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BundleError, match="not a path inside the bundle"):
        load_bundle_bytes(raw.getvalue())


def test_archive_links_are_refused(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("data.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(BundleError, match="not a regular file"):
        load_bundle_bytes(raw.getvalue())


def test_a_file_that_is_not_a_gzipped_tarball_is_a_bundle_error(tmp_path: Path) -> None:
    (tmp_path / "b.tar.gz").write_bytes(b"plain text")
    with pytest.raises(BundleError, match=r"not a readable \.tar\.gz bundle"):
        load_bundle(tmp_path / "b.tar.gz")


def test_missing_bundle_path_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nope")


# --- building ---------------------------------------------------------------------------------


def test_build_is_byte_identical_for_the_same_inputs(src: Path, tmp_path: Path) -> None:
    first = build_bundle([src], tmp_path / "a.tar.gz", revision="v1", include_stdlib=False)
    copy = tmp_path / "copy"
    write(copy, {p.relative_to(src).as_posix(): p.read_text() for p in src.rglob("*.*")})
    write(copy, {".manifest": (src / ".manifest").read_text()})
    second = build_bundle([copy], tmp_path / "b.tar.gz", revision="v1", include_stdlib=False)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert first.sha256 == second.sha256
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert [m.name for m in tar.getmembers()] == sorted(m.name for m in tar.getmembers())
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_build_writes_manifest_and_merged_root_data(src: Path, tmp_path: Path) -> None:
    build_bundle([src], tmp_path / "b.tar.gz", include_stdlib=False)
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        manifest = json.load(tar.extractfile(".manifest"))  # type: ignore[arg-type]
        data = json.load(tar.extractfile("data.json"))  # type: ignore[arg-type]
    assert manifest == {"revision": "r1", "roots": ["acme"], "rego_version": 1}
    assert data["acme"]["teams"] == {"support": ["bob"]}


def test_build_includes_the_standard_library_without_its_tests(tmp_path: Path) -> None:
    stdlib = standard_library_modules()
    if not stdlib:
        pytest.skip("the standard library has no modules yet")
    write(tmp_path / "dev", {".manifest": '{"roots": ["governor"]}'})
    built = build_bundle([tmp_path / "dev"], tmp_path / "b.tar.gz")
    assert set(built.stdlib) == set(stdlib)
    assert not any(name.endswith("_test.rego") for name in built.files)
    assert len(load_bundle(tmp_path / "dev", include_stdlib=True).modules) == len(stdlib)
    with pytest.raises(BundleError, match="already contains"):
        load_bundle(tmp_path / "b.tar.gz", include_stdlib=True)


def test_build_refuses_a_root_that_excludes_the_standard_library(tmp_path: Path) -> None:
    if not standard_library_modules():
        pytest.skip("the standard library has no modules yet")
    write(tmp_path / "dev", {".manifest": '{"roots": ["acme"]}'})
    with pytest.raises(BundleError, match=r"package governor(\..*)? is outside the manifest roots"):
        build_bundle([tmp_path / "dev"], tmp_path / "b.tar.gz")


def test_build_refuses_two_sources_with_the_same_module_path(src: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "other", {"acme/authz.rego": POLICY})
    with pytest.raises(BundleError, match="would both be acme/authz.rego"):
        build_bundle([src, other], tmp_path / "b.tar.gz", include_stdlib=False)


# --- signing and verification -----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "HS256"])
def test_signed_bundle_round_trips(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]], alg: str
) -> None:
    signing, verification = keys[alg]
    out = tmp_path / "b.tar.gz"
    built = build_bundle(
        [src], out, include_stdlib=False, signing_key=signing, signing_alg=alg, key_id="k1"
    )
    assert built.signed and ".signatures.json" in built.files
    bundle = load_bundle(out, verification_key=verification, key_id="k1")
    assert bundle.signed and bundle.verified
    assert bundle.data["acme"]["admins"] == ["ada"]


def test_signature_payload_follows_opas_format(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    build_bundle(
        [src],
        tmp_path / "b.tar.gz",
        include_stdlib=False,
        signing_key=keys["RS256"][0],
        key_id="k1",
        claims={"scope": "write", "iss": "ci"},
    )
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        document = json.load(tar.extractfile(".signatures.json"))  # type: ignore[arg-type]
    (token,) = document["signatures"]
    header, payload = (json.loads(_b64(part)) for part in token.split(".")[:2])
    assert header == {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    assert payload["scope"] == "write" and payload["iss"] == "ci"
    assert {f["name"] for f in payload["files"]} == {".manifest", "data.json", "acme/authz.rego"}
    assert {f["algorithm"] for f in payload["files"]} == {"SHA-256"}


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture
def signed(src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]) -> Path:
    out = tmp_path / "signed.tar.gz"
    build_bundle([src], out, include_stdlib=False, signing_key=keys["RS256"][0])
    return out


def test_tampered_file_is_rejected_naming_it(
    signed: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    rewrite(signed, lambda f: f.update({"acme/authz.rego": f["acme/authz.rego"] + b"\n# x\n"}))
    with pytest.raises(BundleSignatureError, match="file acme/authz.rego does not match"):
        load_bundle(signed, verification_key=keys["RS256"][1])


def test_reformatted_json_still_verifies_but_changed_values_do_not(
    signed: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    def reformat(files: dict[str, bytes]) -> None:
        data = json.loads(files["data.json"])
        files["data.json"] = json.dumps(data, indent=4).encode()

    rewrite(signed, reformat)
    assert load_bundle(signed, verification_key=keys["RS256"][1]).verified
    rewrite(signed, lambda f: f.update({"data.json": f["data.json"].replace(b"ada", b"eve")}))
    with pytest.raises(BundleSignatureError, match="file data.json does not match"):
        load_bundle(signed, verification_key=keys["RS256"][1])


def test_extra_file_is_rejected(signed: Path, keys: dict[str, tuple[bytes, bytes]]) -> None:
    rewrite(signed, lambda f: f.update({"acme/evil.rego": b"package acme.evil\n"}))
    with pytest.raises(BundleSignatureError, match="acme/evil.rego is in the bundle but not in"):
        load_bundle(signed, verification_key=keys["RS256"][1])


def test_missing_file_is_rejected(signed: Path, keys: dict[str, tuple[bytes, bytes]]) -> None:
    rewrite(signed, lambda f: f.pop("acme/authz.rego"))
    with pytest.raises(BundleSignatureError, match="acme/authz.rego are signed but missing"):
        load_bundle(signed, verification_key=keys["RS256"][1])


def test_wrong_key_is_rejected(signed: Path) -> None:
    other = pem_public(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(BundleSignatureError, match="does not verify with the given key"):
        load_bundle(signed, verification_key=other)


def test_key_of_another_kind_is_rejected(
    signed: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    with pytest.raises(BundleSignatureError, match="signed with RS256, which the verification"):
        load_bundle(signed, verification_key=keys["HS256"][1])


def test_missing_signatures_with_a_key_is_rejected(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    build_bundle([src], tmp_path / "b.tar.gz", include_stdlib=False)
    with pytest.raises(BundleSignatureError, match="has no .signatures.json"):
        load_bundle(tmp_path / "b.tar.gz", verification_key=keys["RS256"][1])


def test_signed_directory_is_verified_over_every_file(
    signed: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    target = tmp_path / "extracted"
    with tarfile.open(signed) as tar:
        tar.extractall(target, filter="data")
    assert load_bundle(target, verification_key=keys["RS256"][1]).verified
    (target / "NOTES.md").write_text("added later")
    assert load_bundle(target).data  # unsigned loading ignores the stray file
    with pytest.raises(BundleSignatureError, match="NOTES.md is in the bundle but not in"):
        load_bundle(target, verification_key=keys["RS256"][1])


def test_signed_bundle_without_a_key_loads_unverified(signed: Path) -> None:
    bundle = load_bundle(signed)
    assert bundle.signed and not bundle.verified


def test_scope_and_key_id_must_match(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "b.tar.gz"
    signing, verification = keys["ES256"]
    build_bundle(
        [src],
        out,
        include_stdlib=False,
        signing_key=signing,
        signing_alg="ES256",
        key_id="k1",
        claims={"scope": "read"},
    )
    assert load_bundle(out, verification_key=verification, scope="read").verified
    with pytest.raises(BundleSignatureError, match="scope mismatch"):
        load_bundle(out, verification_key=verification)
    with pytest.raises(BundleSignatureError, match="key id 'k1'.*'k2' was expected"):
        load_bundle(out, verification_key=verification, key_id="k2", scope="read")


def test_signing_key_must_fit_the_algorithm(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    rsa_pem = keys["RS256"][0]
    out = tmp_path / "b.tar.gz"
    with pytest.raises(ConfigurationError, match="ES256 needs an EC private key"):
        build_bundle([src], out, include_stdlib=False, signing_key=rsa_pem, signing_alg="ES256")
    with pytest.raises(ConfigurationError, match="HS256 signs with a shared secret"):
        build_bundle([src], out, include_stdlib=False, signing_key=rsa_pem, signing_alg="HS256")


def test_build_checks_the_new_signature_against_the_verification_key(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    with pytest.raises(BundleSignatureError, match="does not verify"):
        build_bundle(
            [src],
            tmp_path / "b.tar.gz",
            include_stdlib=False,
            signing_key=keys["RS256"][0],
            verification_key=pem_public(rsa.generate_private_key(65537, 2048)),
        )


def test_read_key_reads_files_and_refuses_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\n")
    assert read_key(str(tmp_path / "k.pem")).startswith(b"-----BEGIN")
    assert read_key("my-secret", algorithm="HS256") == b"my-secret"
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_key("keys/missing.pem")
    with pytest.raises(ConfigurationError, match="RS256 needs a PEM key file"):
        read_key("missing", algorithm="RS256")


# --- hashing as OPA does ----------------------------------------------------------------------


def test_structured_files_hash_canonically_with_literal_numbers() -> None:
    raw = b'{"b": [1.0, 1e3, "<a&b>"], "a": {"y": null, "x": true}, "\\u2028": "\\u00e9"}'
    expected = b'{"a":{"x":true,"y":null},"b":[1.0,1e3,"<a&b>"],"\\u2028":"\xc3\xa9"}'
    assert file_digest("data.json", raw) == hashlib.sha256(expected).hexdigest()
    assert file_digest("x/data.json", b"[1,2]") == hashlib.sha256(b"[1,2]").hexdigest()
    assert file_digest("a.rego", b"package a\n") == hashlib.sha256(b"package a\n").hexdigest()


def test_yaml_floats_are_formatted_like_go() -> None:
    assert [go_float(v) for v in (1.0, 1e21, 1e-7, 1e20, 0.5)] == [
        "1",
        "1e+21",
        "1e-7",
        "100000000000000000000",
        "0.5",
    ]


# --- load_sources (the CLI helper) ------------------------------------------------------------


def test_load_sources_mixes_bundles_and_plain_paths(src: Path, tmp_path: Path) -> None:
    plain = write(tmp_path / "plain", {"p.rego": "package plain\n\nx := 1\n"})
    build_bundle([src], tmp_path / "b.tar.gz", include_stdlib=False)
    bundle = load_sources([tmp_path / "b.tar.gz", plain])
    assert bundle.revision == "r1"
    assert len(bundle.modules) == 2


def test_load_sources_with_a_key_requires_every_path_signed(
    signed: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]]
) -> None:
    plain = write(tmp_path / "plain", {"p.rego": "package plain\n\nx := 1\n"})
    assert load_sources([signed], verification_key=keys["RS256"][1]).verified
    with pytest.raises(BundleSignatureError, match="no .signatures.json"):
        load_sources([signed, plain], verification_key=keys["RS256"][1])


def test_load_sources_refuses_bundles_with_overlapping_roots(src: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "other", {".manifest": '{"roots": ["acme/x"]}'})
    with pytest.raises(BundleError, match="overlapping roots"):
        load_sources([src, other])


# --- real OPA accepts what we build -----------------------------------------------------------

VERIFY = """package check

valid := io.jwt.verify_rs256(input.token, input.key) if input.alg == "RS256"
valid := io.jwt.verify_es256(input.token, input.key) if input.alg == "ES256"
valid := io.jwt.verify_hs256(input.token, input.key) if input.alg == "HS256"
valid := io.jwt.verify_ps256(input.token, input.key) if input.alg == "PS256"
payload := io.jwt.decode(input.token)[1]
digest[name] := crypto.sha256(text) if some name, text in input.raw
digest[name] := crypto.sha256(json.marshal(json.unmarshal(text))) if some name, text in input.json
"""


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "HS256"])
def test_real_opa_loads_the_archive_and_accepts_its_signature(
    src: Path, tmp_path: Path, keys: dict[str, tuple[bytes, bytes]], alg: str
) -> None:
    opa_bindings = pytest.importorskip("opa_bindings")
    signing, verification = keys[alg]
    out = tmp_path / "b.tar.gz"
    build_bundle([src], out, include_stdlib=False, signing_key=signing, signing_alg=alg)
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    engine = opa_bindings.OpaEngine()
    try:
        for name, raw in files.items():
            if name.endswith(".rego"):
                engine.add_policy(name, raw.decode())
        engine.add_data(json.loads(files["data.json"]))
        assert engine.eval_document("acme.authz.allow", {"user": "ada"}) is True

        engine.add_policy("check.rego", VERIFY)
        token = json.loads(files[".signatures.json"])["signatures"][0]
        structured = {".manifest", "data.json"}
        result = engine.eval_document(
            "check",
            {
                "alg": alg,
                "token": token,
                "key": verification.decode(),
                "raw": {n: r.decode() for n, r in files.items() if n.endswith(".rego")},
                "json": {n: r.decode() for n, r in files.items() if n in structured},
            },
        )
    finally:
        engine.close()
    assert result["valid"] is True
    signed_hashes = {f["name"]: f["hash"] for f in result["payload"]["files"]}
    assert signed_hashes == result["digest"]
