from __future__ import annotations

from pathlib import Path

import pytest

from slawatch.config.settings import Secret, Settings, load_settings
from slawatch.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slawatch.yaml"
    path.write_text(text)
    return path


def test_defaults_without_anything() -> None:
    settings = load_settings(None, environ={})
    assert settings.partitions == 4
    assert settings.broker_url == "kafka://127.0.0.1:9092"
    assert settings.worker_id  # host:pid by default


def test_file_then_environment_then_arguments(tmp_path) -> None:
    path = write(tmp_path, "partitions: 8\nweb_port: 7000\ntopic_calls: acd-calls\n")
    settings = load_settings(
        path,
        environ={"SLAWATCH_WEB_PORT": "7001", "SLAWATCH_MAX_FUTURE_SKEW_S": "2.5"},
        app_id="other",
    )
    assert settings.partitions == 8
    assert settings.web_port == 7001
    assert settings.topic_calls == "acd-calls"
    assert settings.max_future_skew_s == 2.5
    assert settings.app_id == "other"


def test_config_file_from_environment(tmp_path) -> None:
    path = write(tmp_path, "app_id: from-file\n")
    assert load_settings(None, environ={"SLAWATCH_CONFIG": str(path)}).app_id == "from-file"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("partitions: 4\nparitions: 8\n", 2, "paritions", "unknown setting"),
        ("partitions: eight\n", 1, "partitions", "expected an integer"),
        ("app_id: x\n\nweb_port: 70000\n", 3, "web_port", "port number"),
        ("store: [a, b]\n", 1, "store", "single value"),
        ("store: redis://\n", 1, "store", "memory:// or rocksdb://"),
        ("app_id: x\n  bad: : indent\n", 2, "(syntax)", "not valid YAML"),
        ("- just\n- a list\n", 1, "(top level)", "mapping"),
        ("max_future_skew_s: -1\n", 1, "max_future_skew_s", "greater than 0"),
        ("partitions: true\n", 1, "partitions", "expected an integer"),
        ("max_event_bytes: 600000\n", 1, "max_event_bytes", "at most 524288"),
        ("app_id: x\nweb_port: 2026-02-30\n", 2, "web_port", "not a value YAML can read"),
        ("app_id: x\nstore: !!python/name:os.system\n", 2, "store", "not a value YAML can read"),
    ],
)
def test_file_errors_name_file_line_and_field(tmp_path, text, line, field, words) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert words in message
    assert "\n" not in message


def test_a_file_that_is_not_utf8_is_a_config_error_with_its_line(tmp_path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_bytes(b"app_id: x\nweb_port: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}:2: (file): not UTF-8 text"), caught.value


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"SLAWATCH_PARTITIONS": "0"})
    assert str(caught.value) == "environment: SLAWATCH_PARTITIONS: must be at least 1"
    with pytest.raises(ConfigError, match="SLAWATCH_WEB_PORT: expected an integer"):
        load_settings(None, environ={"SLAWATCH_WEB_PORT": "http"})


def test_secrets_never_show() -> None:
    settings = load_settings(None, environ={"SLAWATCH_REDIS_URL": "redis://:hunter2@cache:6379/0"})
    assert isinstance(settings.redis_url, Secret)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.describe())
    assert str(settings.redis_url) == "redis://:hunter2@cache:6379/0"


def test_every_setting_is_documented() -> None:
    rows = Settings().describe()
    assert all(doc for *_, doc in rows)
    assert {env for env, *_ in rows} >= {"SLAWATCH_BROKER_URL", "SLAWATCH_PARTITIONS"}


def test_bootstrap_servers() -> None:
    settings = load_settings(None, environ={"SLAWATCH_BROKER_URL": "kafka://a:1;b:2"})
    assert settings.bootstrap_servers == ["a:1", "b:2"]


def test_readme_configuration_table_is_generated_from_the_settings() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("| Variable | Default | What it sets |")
    end = readme.index("<!-- config-table end -->")
    assert readme[start:end].strip() == Settings.markdown_table(), (
        "run `slawatch config --markdown` and paste it into README.md"
    )


def test_environment_for_a_child_reproduces_the_settings(tmp_path) -> None:
    settings = load_settings(
        None, environ={}, partitions=7, redis_url="redis://:pw@h:1/0", policy_file=""
    )
    env = settings.to_environment({"PATH": "/bin", "SLAWATCH_PARTITIONS": "99"})
    assert env["PATH"] == "/bin" and env["SLAWATCH_PARTITIONS"] == "7"
    assert load_settings(None, environ=env) == settings


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("app_id: " + "[" * 3000 + "]" * 3000 + "\n", 1, "nested deeper than 64 levels"),
        (
            "".join(
                f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i else "x"] * 10) + "]\n"
                for i in range(9)
            ),
            5,
            "more than 50,000 values once aliases are expanded",
        ),
        ("app_id: x\n" + "# padding\n" * 30_000, 1, "longer than 262,144 bytes"),
    ],
    ids=["deep nesting", "alias bomb", "huge file"],
)
def test_a_settings_file_past_the_readers_limits_is_one_error(tmp_path, text, line, words) -> None:
    # The settings file is read by the same reader as the policy file, with its limits.
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: (syntax): "), message
    assert words in message and "\n" not in message


def test_the_largest_event_setting_is_what_ingest_forwards() -> None:
    from slawatch.agents.ingest import MAX_FORWARDED_EVENT_BYTES
    from slawatch.config.settings import MAX_EVENT_BYTES_LIMIT

    assert MAX_EVENT_BYTES_LIMIT == MAX_FORWARDED_EVENT_BYTES
