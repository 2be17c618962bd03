"""Settings: defaults < config.yml < environment < flags; bad values name the setting."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.server import free_port_pair

from appliance.cli import main
from appliance.config import (
    FIELDS,
    SettingsError,
    check_ports,
    ensure_folders,
    load_settings,
    read_saved_settings,
    save_settings,
    settings_table,
)


def test_defaults_work_with_no_configuration(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.port == 8081 and settings.websocket_port == 8082
    assert settings.download_path == tmp_path / "var" / "downloads"
    assert settings.config_path == tmp_path / "var" / "config"
    ensure_folders(settings)
    assert settings.download_path.is_dir() and settings.temp_path.is_dir()


def test_environment_wins_over_file_and_file_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("port: 9000\nmax_workers: 5\nYTP_CONSOLE_ENABLED: yes\n")
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path), "YTP_MAX_WORKERS": "7"})
    assert settings.port == 9000
    assert settings.max_workers == 7
    assert settings.console_enabled is True
    flags = load_settings({"YTP_CONFIG_PATH": str(tmp_path)}, overrides={"port": 9100})
    assert flags.port == 9100


@pytest.mark.parametrize(("section", "host", "port"), [
    ("web_server: yes", "0.0.0.0", 8081),
    ("web_server: 8080", "0.0.0.0", 8080),
    ("web_server:\n  bind: 127.0.0.1\n  port: 5050\n  web_ui: no", "127.0.0.1", 5050),
    ('web_server: " 8090 "', "0.0.0.0", 8090),  # quoted: a string, as a template may write it
    ('web_server: "On"', "0.0.0.0", 8081),
    ('web_server: "off"', "0.0.0.0", 8081),
])
def test_flexget_web_server_forms(tmp_path: Path, section: str, host: str, port: int) -> None:
    (tmp_path / "config.yml").write_text(section + "\n")
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path)})
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize(("env", "text"), [
    ({"YTP_PORT": "eighty"}, "YTP_PORT: expected a whole number, got 'eighty'"),
    ({"YTP_PORT": "70000"}, "YTP_PORT: must be at most 65535"),
    ({"YTP_MAX_WORKERS": "0"}, "YTP_MAX_WORKERS: must be at least 1"),
    ({"YTP_CONSOLE_ENABLED": "maybe"}, "YTP_CONSOLE_ENABLED: expected true or false"),
    ({"YTP_LOG_LEVEL": "loud"}, "YTP_LOG_LEVEL: must be one of"),
    ({"YTP_AUTH_USERNAME": "me"}, "must be set together"),
    ({"YTP_CORS_ORIGINS": "https://a.lan/app"}, "expected origins like"),
    ({"YTP_CORS_ORIGINS": "https://a.lan?x=1"}, "expected origins like"),
    ({"YTP_CORS_ORIGINS": "https://a.lan#top"}, "expected origins like"),
    ({"YTP_CORS_ORIGINS": "https://*.lan"}, "expected origins like"),
    ({"YTP_CORS_ORIGINS": "ftp://a.lan"}, "expected origins like"),
    ({"YTP_TRUSTED_PROXIES": "10.0.0.0/33"}, "expected IP addresses or networks"),
    ({"YTP_TASKS_TIMEZONE": "Mars/Olympus"}, "expected a time zone like Europe/Berlin"),
    ({"YTP_MAX_WORKERS": "true"}, "YTP_MAX_WORKERS: expected a whole number, got 'true'"),
    ({"YTP_ALLOWED_HOSTS": "http://media.example"}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "media.example:8081"}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "a..b"}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "*."}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "-bad.example"}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "media example"}, "YTP_ALLOWED_HOSTS: expected host names"),
    ({"YTP_ALLOWED_HOSTS": "*a.example"}, "YTP_ALLOWED_HOSTS: expected host names"),
    # NaN passed every bound (the stall check was off); infinity and numbers past any wait
    # stopped the start or a thread (int(inf), Event.wait(1e10): OverflowError).
    ({"YTP_STALL_TIMEOUT": "nan"}, "YTP_STALL_TIMEOUT: expected a number, got 'nan'"),
    ({"YTP_NOTIFY_TIMEOUT": "NaN"}, "YTP_NOTIFY_TIMEOUT: expected a number, got 'NaN'"),
    ({"YTP_EXTRACT_INFO_TIMEOUT": "inf"}, "YTP_EXTRACT_INFO_TIMEOUT: expected a number"),
    ({"YTP_WORKER_LINGER": "1e400"}, "YTP_WORKER_LINGER: expected a number, got '1e400'"),
    ({"YTP_WORKER_IDLE_TIMEOUT": "1e10"}, "YTP_WORKER_IDLE_TIMEOUT: must be at most 86400"),
    ({"YTP_YTDLP_UPDATE_INTERVAL": "1e7"}, "YTP_YTDLP_UPDATE_INTERVAL: must be at most 8784"),
    ({"YTP_FILE_RESCAN_INTERVAL": "86401"}, "YTP_FILE_RESCAN_INTERVAL: must be at most 86400"),
])
def test_bad_settings_name_the_setting(tmp_path: Path, env: dict, text: str) -> None:
    with pytest.raises(SettingsError, match=text):
        load_settings({"YTP_CONFIG_PATH": str(tmp_path), **env})


@pytest.mark.parametrize(("content", "text"), [
    ("port: [1, 2\n", "cannot read config file: while parsing a flow sequence$"),
    ("- a list\n", "expected a mapping"),
    ("colour: blue\n", "unknown setting 'colour'"),
    ("web_server: {bind: x, tls: y}\n", "web_server: unknown key"),
    ("port: nope\n", "config.yml port: expected a whole number"),
    # A path with a NUL byte was a ValueError from deep in pathlib: a traceback at start.
    ('download_path: "/srv/a\\0b"\n', "config.yml download_path: a NUL byte cannot be part"),
    ('temp_path: "/tmp/\\0"\n', "config.yml temp_path: a NUL byte cannot be part"),
    ('base_path: "/a\\0"\n', "config.yml base_path: a NUL byte cannot be part"),
    ("stall_timeout: .nan\n", "config.yml stall_timeout: expected a number, got nan"),
])
def test_bad_config_file(tmp_path: Path, content: str, text: str) -> None:
    (tmp_path / "config.yml").write_text(content)
    with pytest.raises(SettingsError, match=text):
        load_settings({"YTP_CONFIG_PATH": str(tmp_path)})


def test_values_are_read_as_written_and_normalised(tmp_path: Path) -> None:
    settings = load_settings({
        "YTP_CONFIG_PATH": str(tmp_path), "YTP_KEEP_ARCHIVE": "0", "YTP_FILE_WATCH": " Off ",
        "YTP_CONSOLE_ENABLED": "Yes", "YTP_REMOVE_FILES": "1", "YTP_ZEROCONF": "on",
        "YTP_CORS_ORIGINS": "HTTPS://Example.COM:8443/, http://a.lan,https://example.com:8443",
        "YTP_TRUSTED_PROXIES": "10.1.2.3/8, ::1", "YTP_TASKS_TIMEZONE": " Europe/Berlin ",
        "YTP_BASE_PATH": "ytp",
    })
    assert settings.keep_archive is False and settings.file_watch is False
    assert settings.console_enabled is True and settings.remove_files is True
    assert settings.zeroconf is True
    assert settings.cors_origins == ("https://example.com:8443", "http://a.lan")
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert settings.tasks_timezone == "Europe/Berlin"
    assert settings.base_path == "/ytp/"


def test_a_yaml_true_is_not_a_number(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("max_workers: yes\n")
    with pytest.raises(SettingsError, match="expected a whole number, got True"):
        load_settings({"YTP_CONFIG_PATH": str(tmp_path)})


def test_unwritable_folder_is_a_settings_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path / "config"),
                              "YTP_DOWNLOAD_PATH": str(blocker / "sub")})
    with pytest.raises(SettingsError, match="YTP_DOWNLOAD_PATH: cannot create"):
        ensure_folders(settings)


def test_public_settings_hide_secrets(tmp_path: Path) -> None:
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path), "YTP_AUTH_USERNAME": "u",
                              "YTP_AUTH_PASSWORD": "secret"})
    public = settings.public()
    assert "secret" not in str(public) and public["auth_enabled"] is True
    assert "auth_username" not in public and "sources" not in public
    # the port the websocket really listens on (0 means the HTTP port + 1)
    assert public["ws_port"] == settings.port + 1 and settings.ws_port == 0


def test_public_settings_show_addresses_without_their_credentials(tmp_path: Path) -> None:
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path),
                              "YTP_YTDLP_INDEX_URL": "https://me:tok@pypi.example/simple"})
    assert settings.public()["ytdlp_index_url"] == "https://***@pypi.example/simple"


def test_an_empty_value_in_the_file_is_an_empty_text(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("ytdlp_cli:\n")  # YAML's null
    assert load_settings({"YTP_CONFIG_PATH": str(tmp_path)}).ytdlp_cli == ""


def test_saved_settings_are_sorted_and_others_there_said_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_settings(tmp_path, {"stall_timeout": 60.0, "max_workers": 2})
    assert (tmp_path / "settings.json").read_text() == (
        '{\n  "max_workers": 2,\n  "stall_timeout": 60.0\n}\n')
    (tmp_path / "settings.json").write_text('{"port": 1, "host": "x", "max_workers": 2}')
    assert read_saved_settings(tmp_path) == {"max_workers": 2}
    assert caplog.records[-1].getMessage().endswith(
        "ignoring setting(s) that cannot be saved there: host, port")


def test_settings_table_lists_every_setting() -> None:
    table = settings_table()
    for field in FIELDS:
        assert f"`{field.env}`" in table


def test_readme_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for row in settings_table().splitlines()[2:]:
        assert row in readme, f"README is missing or outdated for: {row}"


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_port_in_use_is_one_clear_line_before_any_server_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CONFIG", "DOWNLOAD", "TEMP"):
        monkeypatch.setenv(f"YTP_{name}_PATH", str(tmp_path / name.lower()))
    monkeypatch.setenv("YTP_HOST", "127.0.0.1")
    with listening() as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
        assert capsys.readouterr().err == (
            f"appliance: bad setting: YTP_PORT: cannot listen on 127.0.0.1:{port}: "
            "already in use (is the appliance already running?)\n")
        monkeypatch.setenv("YTP_WS_PORT", str(port))  # the websocket's port, this time
        with listening() as free_now:
            http = free_now.getsockname()[1]
        assert main(["serve", "--port", str(http)]) == 2
        assert f"YTP_WS_PORT: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "text"), [
    ({"YTP_PORT": "9000", "YTP_WS_PORT": "9000"}, "YTP_WS_PORT: must differ from YTP_PORT"),
    ({"YTP_HOST": "no-such-host.invalid"}, "YTP_HOST: 'no-such-host.invalid' is not an address"),
    ({"YTP_HOST": "192.0.2.1"},
     r"YTP_HOST: cannot listen on 192.0.2.1:\d+: not an address of this machine$"),
])
def test_ports_that_cannot_be_listened_on(tmp_path: Path, env: dict, text: str) -> None:
    settings = load_settings({"YTP_CONFIG_PATH": str(tmp_path), **env})
    with pytest.raises(SettingsError, match=text):
        check_ports(settings)


def test_free_ports_pass(tmp_path: Path) -> None:
    port = free_port_pair()  # the websocket's (port + 1) free too: another test's may be there
    check_ports(load_settings({"YTP_CONFIG_PATH": str(tmp_path), "YTP_HOST": "127.0.0.1",
                               "YTP_PORT": str(port), "YTP_WS_PORT": "0"}))
