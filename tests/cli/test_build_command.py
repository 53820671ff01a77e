"""`governor build`: what it prints, what it writes, and how it fails."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from governor_cli.main import app
from typer.testing import CliRunner

from governor.bundle import load_bundle, standard_library_modules

runner = CliRunner()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "dev"
    (root / "acme").mkdir(parents=True)
    (root / ".manifest").write_text(json.dumps({"revision": "r7", "roots": ["acme", "governor"]}))
    (root / "acme" / "p.rego").write_text("package acme.p\n\nallow if input.ok\n")
    (root / "acme" / "data.json").write_text('{"limit": 3}')
    (root / "governance.yaml").write_text("policies: []\n")
    return root


@pytest.fixture
def ec_keys(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "key.pem"
    public = tmp_path / "key.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_build_prints_one_line_per_fact_and_writes_the_archive(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist" / "bundle.tar.gz"
    result = runner.invoke(app, ["build", str(src), "-o", str(out), "--no-stdlib"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"built {out}"
    assert any(line.split()[:2] == ["files", "3"] for line in lines)
    assert "  revision  r7" in lines
    assert "  signed    no" in lines
    assert any(line.startswith("  size ") and "sha256" in line for line in lines)
    assert any("governance.yaml" in line and "ignored" in line for line in lines)
    assert load_bundle(out).revision == "r7"


def test_build_with_the_standard_library_says_so(src: Path, tmp_path: Path) -> None:
    count = len(standard_library_modules())
    if not count:
        pytest.skip("the standard library has no modules yet")
    result = runner.invoke(app, ["build", str(src), "-o", str(tmp_path / "b.tar.gz")])
    assert result.exit_code == 0, result.stderr
    assert f"{count} from the standard library" in result.stdout


def test_build_signs_and_checks_the_signature(
    src: Path, tmp_path: Path, ec_keys: tuple[Path, Path]
) -> None:
    private, public = ec_keys
    out = tmp_path / "b.tar.gz"
    claims = tmp_path / "claims.json"
    claims.write_text('{"scope": "deploy", "iss": "ci"}')
    args = ["build", str(src), "-o", str(out), "--no-stdlib", "--revision", "v2"]
    args += ["--signing-key", str(private), "--signing-alg", "ES256", "--key-id", "ci"]
    args += ["--verification-key", str(public), "--claims-file", str(claims)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "  signed    yes: ES256, key id 'ci'" in result.stdout
    assert "  revision  v2" in result.stdout
    bundle = load_bundle(out, verification_key=public, key_id="ci", scope="deploy")
    assert bundle.verified


def test_build_twice_gives_the_same_bytes(src: Path, tmp_path: Path) -> None:
    for name in ("a.tar.gz", "b.tar.gz"):
        result = runner.invoke(app, ["build", str(src), "-o", str(tmp_path / name), "--no-stdlib"])
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert ".manifest" in tar.getnames()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--signing-alg", "XS256"], "unknown --signing-alg 'XS256'"),
        (["--signing-key", "keys/missing.pem"], "key file keys/missing.pem does not exist"),
        (["--root", "other"], "package acme.p is outside the manifest roots"),
    ],
)
def test_build_errors_exit_2_with_a_message(
    src: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "b.tar.gz"
    result = runner.invoke(app, ["build", str(src), "-o", str(out), "--no-stdlib", *extra])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not out.exists()


def test_build_refuses_a_module_that_does_not_parse(src: Path, tmp_path: Path) -> None:
    (src / "acme" / "broken.rego").write_text("package acme.broken\n\nallow if {\n")
    out = tmp_path / "b.tar.gz"
    result = runner.invoke(app, ["build", str(src), "-o", str(out), "--no-stdlib"])
    assert result.exit_code == 2
    assert "broken.rego" in result.stderr
    assert not out.exists()


def test_build_refuses_a_claims_file_that_is_not_an_object(
    src: Path, tmp_path: Path, ec_keys: tuple[Path, Path]
) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text("[1]")
    args = ["build", str(src), "-o", str(tmp_path / "b.tar.gz"), "--no-stdlib"]
    args += ["--signing-key", str(ec_keys[0]), "--signing-alg", "ES256"]
    result = runner.invoke(app, [*args, "--claims-file", str(claims)])
    assert result.exit_code == 2
    assert "must hold a JSON object" in result.stderr
