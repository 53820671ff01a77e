"""`Settings.from_env`: embedded defaults, GOVERNOR_* overrides, clear errors."""

from __future__ import annotations

import pytest
from governor_server.settings import DEFAULT_BUNDLE, Settings

from governor.errors import ConfigurationError


def test_defaults_are_the_store_file_regorus_and_the_development_bundle() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.endswith(".governor/governor.db")
    assert settings.engine == "regorus"
    assert settings.bundle == str(DEFAULT_BUNDLE) and DEFAULT_BUNDLE.is_dir()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "GOVERNOR_DATABASE_URL": "sqlite:///x.db",
            "GOVERNOR_ENGINE": "opa",
            "GOVERNOR_OPA_URL": "http://127.0.0.1:8181",
            "GOVERNOR_HOST": "0.0.0.0",
            "GOVERNOR_PORT": "9001",
        }
    )
    assert settings.database_url == "sqlite:///x.db"
    assert settings.engine == "opa" and settings.bundle is None
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)


@pytest.mark.parametrize("port", ["http", "70000", "-1"])
def test_a_bad_port_is_named(port: str) -> None:
    with pytest.raises(ConfigurationError, match="GOVERNOR_PORT"):
        Settings.from_env({"GOVERNOR_PORT": port})


def test_worker_threads_are_automatic_unless_set() -> None:
    assert Settings.from_env({}).worker_threads is None
    assert Settings.from_env({"GOVERNOR_WORKER_THREADS": "auto"}).worker_threads is None
    assert Settings.from_env({"GOVERNOR_WORKER_THREADS": "0"}).worker_threads == 0
    assert Settings.from_env({"GOVERNOR_WORKER_THREADS": "4"}).worker_threads == 4


@pytest.mark.parametrize("threads", ["many", "-1", "1000"])
def test_a_bad_worker_thread_count_is_named(threads: str) -> None:
    with pytest.raises(ConfigurationError, match="GOVERNOR_WORKER_THREADS"):
        Settings.from_env({"GOVERNOR_WORKER_THREADS": threads})
