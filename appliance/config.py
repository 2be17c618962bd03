"""Settings: one object, built once from defaults < config.yml < settings.json (changes made
through ``PUT /api/settings``) < YTP_* environment < command-line flags.

Owner: ``SettingsHolder``. The running service has one; every component keeps a reference to
it and reads ``holder.current`` when it uses a value, and ``PUT /api/settings`` swaps
``current`` in one place (``SettingsHolder.change``), so a change reaches all of them at once.

Every setting is declared once in ``FIELDS`` (``setting_fields.py``); the README table is
generated from the same declarations (``appliance settings``), so the documentation cannot
drift from the code.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .atomic import private_folder, write_atomic
from .download_folder import download_folder_problem
from .setting_fields import ENV_PREFIX, FIELDS, Field, SettingsError

OVERRIDES_FILE = "settings.json"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str
    port: int
    ws_port: int
    config_path: Path
    download_path: Path
    temp_path: Path
    base_path: str
    max_workers: int
    max_workers_per_extractor: int
    warm_workers: int
    worker_idle_timeout: float
    worker_linger: float
    extract_info_timeout: float
    extract_info_concurrency: int
    stall_timeout: float
    url_info_cache_ttl: float
    output_template: str
    ytdlp_cli: str
    default_pagination: int
    folder_depth: int
    max_body: int
    max_connections_per_address: int
    ws_backlog_budget: int
    db_backups: int
    auth_username: str
    auth_password: str
    console_enabled: bool
    remove_files: bool
    keep_archive: bool
    log_level: str
    cors_origins: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    file_logging: bool
    max_streams: int
    max_transfers: int
    console_timeout: float
    dev_mode: bool
    check_for_updates: bool
    update_check_url: str
    notify_timeout: float
    notify_retries: int
    notify_retry_delay: float
    notify_burst_window: float
    tasks_timezone: str
    tasks_spread: float
    tasks_concurrency: int
    executions_kept: int
    youtube_base_url: str
    browser_enabled: bool
    browser_control_enabled: bool
    file_watch: bool
    file_rescan_interval: float
    send_timeout: float
    fetch_private_addresses: bool
    background_url: str
    player_max_ffmpeg: int
    player_encoder: str
    ytdlp_index_url: str
    ytdlp_update_interval: float
    ytdlp_check_url: str
    zeroconf: bool
    # Where each value came from: default, config.yml, settings.json, YTP_… or --flag.
    sources: Mapping[str, str] = dataclasses.field(
        default_factory=dict, kw_only=True, compare=False, repr=False
    )

    @property
    def websocket_port(self) -> int:
        return self.ws_port or self.port + 1

    @property
    def database_file(self) -> Path:
        return self.config_path / "appliance.db"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """Settings a client may see (no secrets: a URL's credentials left out), JSON-ready."""
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in {"auth_password", "auth_username", "sources"}
        }
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif key.endswith("_url") and isinstance(value, str):
                data[key] = url_shown(value)
        data["ws_port"] = self.websocket_port
        data["auth_enabled"] = bool(self.auth_username and self.auth_password)
        return data


_PATH_FIELDS = {"config_path", "download_path", "temp_path"}
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def url_shown(url: str) -> str:
    """A URL for a client, a log line or a message (which notifications carry to chat apps):
    its credentials (``https://user:token@host/``, a private package index) left out. By
    pattern, not parsed: a setting that is no valid URL is shown too."""
    return _USERINFO.sub(r"\1***@", url, count=1)


def _web_server_section(value: Any) -> dict[str, Any]:
    """FlexGet's ``web_server:`` forms: ``yes``, a port number, or a mapping."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, int):
        return {"port": value}
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return {"port": int(text)}
        if text in {"yes", "true", "on", "no", "false", "off"}:
            return {}
        raise SettingsError(f"web_server: expected yes, a port or a mapping, got {value!r}")
    if isinstance(value, dict):
        unknown = set(value) - {"bind", "port", "web_ui"}
        if unknown:
            raise SettingsError(f"web_server: unknown key(s) {', '.join(sorted(unknown))}")
        # web_ui is accepted for FlexGet compatibility; there is no bundled web UI to switch.
        out = {k: v for k, v in value.items() if k == "port"}
        if "bind" in value:
            out["host"] = value["bind"]
        return out
    raise SettingsError(f"web_server: expected yes, a port or a mapping, got {value!r}")


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():  # (a folder this user may not enter: PermissionError)
            return {}
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise SettingsError(f"{path}: cannot read config file: {reason}") from None
    import yaml  # with a config file only: gunicorn's master holds what it imports

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"{path}: {_yaml_place(exc)}cannot read config file: {reason}"
                            ) from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings at the top level")
    known = {f.name for f in FIELDS}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = _file_key(key)
        if name == "web_server":
            values.update(_web_server_section(value))
        elif name in known:
            values[name] = value
        else:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise SettingsError(f"{path}: unknown setting {key!r}{_on_line(path, name)} "
                                f"({hint}`appliance settings` lists them all)")
    return values


def _file_key(key: Any) -> str:
    return str(key).lower().removeprefix("ytp_")


def _yaml_place(exc: Exception) -> str:
    """``line L, column C: `` where the YAML error is (where what it was parsing began, when
    its first line names that), or nothing: a person fixes a file by its line."""
    mark = getattr(exc, "context_mark", None) if getattr(exc, "context", None) else None
    mark = mark or getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _on_line(path: Path, name: str) -> str:
    """`` on line N`` of the top-level key ``name`` in config.yml, or nothing. Only for a
    message: the file is composed again, its nodes' marks giving the lines."""
    import yaml

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""
    if not isinstance(root, yaml.MappingNode):
        return ""
    for key, _ in root.value:
        if _file_key(key.value) == name:
            return f" on line {key.start_mark.line + 1}"
    return ""


def _convert(field: Field, raw: Any, source: str) -> Any:
    try:
        value = field.convert(raw)
    except ValueError as exc:
        raise SettingsError(f"{source}: {exc}") from None
    if field.minimum is not None and value < field.minimum:
        raise SettingsError(f"{source}: must be at least {field.minimum:g}, got {value!r}")
    if field.maximum is not None and value > field.maximum:
        raise SettingsError(f"{source}: must be at most {field.maximum:g}, got {value!r}")
    if field.choices and value not in field.choices:
        raise SettingsError(f"{source}: must be one of {', '.join(field.choices)}, got {raw!r}")
    return value


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build the settings. ``overrides`` (command-line flags) win over everything, then the
    environment, then ``settings.json`` (changes saved through the API), then config.yml."""
    environ = os.environ if environ is None else environ
    by_name = {f.name: f for f in FIELDS}
    config_path = Path(environ.get(by_name["config_path"].env, by_name["config_path"].default))
    if os.path.exists(config_path) and not os.path.isdir(config_path):  # (no OSError)
        # (else its config.yml was passed over unread, and settings.json's read said
        # "[Errno 20] Not a directory" of a file inside it)
        raise SettingsError(f"{by_name['config_path'].env}: {config_path} is a file, not a "
                            f"folder")
    file_values = _read_config_file(config_path / "config.yml")
    saved = read_saved_settings(config_path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field in FIELDS:
        if overrides and overrides.get(field.name) is not None:
            raw, source = overrides[field.name], f"--{field.name.replace('_', '-')}"
            sources[field.name] = source
        elif field.env in environ:
            raw, source = environ[field.env], field.env
            sources[field.name] = source
        elif field.name in saved:
            raw, source = saved[field.name], f"{OVERRIDES_FILE} {field.name}"
            sources[field.name] = OVERRIDES_FILE
        elif field.name in file_values:
            raw, source = file_values[field.name], f"{config_path / 'config.yml'} {field.name}"
            sources[field.name] = "config.yml"
        else:
            raw, source = field.default, field.name
            sources[field.name] = "default"
        try:
            values[field.name] = _convert(field, raw, source)
        except SettingsError as exc:
            if sources[field.name] != "config.yml":
                raise
            raise SettingsError(f"{exc}{_on_line(config_path / 'config.yml', field.name)}"
                                ) from None
    for name in _PATH_FIELDS:
        values[name] = Path(values[name]).expanduser().resolve()
    base = "/" + values["base_path"].strip("/")
    values["base_path"] = base if base == "/" else base + "/"
    _check_download_path(values["download_path"], values["config_path"], values["temp_path"],
                         f"download_path ({sources['download_path']})")
    if bool(values["auth_username"]) != bool(values["auth_password"]):
        raise SettingsError(
            "YTP_AUTH_USERNAME and YTP_AUTH_PASSWORD must be set together (one is empty)"
        )
    return Settings(**values, sources=sources)


# Settings that may change while the service runs (``PUT /api/settings``). A change is saved in
# ``<config_path>/settings.json``, which wins over config.yml but not over the environment: a
# setting given as YTP_… is pinned and the API refuses to change it.
API_EDITABLE = frozenset({
    "max_workers", "max_workers_per_extractor", "download_path", "output_template",
    "stall_timeout",
})


def read_saved_settings(config_path: Path) -> dict[str, Any]:
    """The values saved through the API (``settings.json``); {} when there are none."""
    path = config_path / OVERRIDES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SettingsError(f"{path}: cannot read saved settings: {reason}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected an object of settings")
    ignored = sorted(set(data) - API_EDITABLE)
    if ignored:
        log.warning("%s: ignoring setting(s) that cannot be saved there: %s", path,
                    ", ".join(ignored))
    return {k: v for k, v in data.items() if k in API_EDITABLE}


def pinned_by(settings: Settings, name: str) -> str | None:
    """The environment variable or flag that fixes ``name``, if any (the API cannot win)."""
    source = settings.sources.get(name, "")
    return source if source.startswith((ENV_PREFIX, "--")) else None


def with_changes(settings: Settings, changes: Mapping[str, Any],
                 names: Mapping[str, str] | None = None) -> Settings:
    """``settings`` with ``changes`` (editable names) checked like any other source.
    ``names``: what the caller's users call each setting (the API's ``download_directory``),
    for the refusal's text."""
    by_name = {f.name: f for f in FIELDS}
    said = dict(names or {})
    values: dict[str, Any] = {}
    for name, raw in changes.items():
        if name not in API_EDITABLE:
            raise SettingsError(f"{name}: cannot be changed while the service runs")
        value = _convert(by_name[name], raw, said.get(name, name))
        values[name] = Path(value).expanduser().resolve() if name in _PATH_FIELDS else value
    sources = {**settings.sources, **dict.fromkeys(values, OVERRIDES_FILE)}
    if "download_path" in values:
        _check_download_path(values["download_path"], settings.config_path, settings.temp_path,
                             said.get("download_path", "download_path (download_path)"))
    return dataclasses.replace(settings, **values, sources=sources)


Listener = Callable[["Settings", "Settings"], None]


class SettingsHolder:
    """The service's live settings: ``current`` is one immutable ``Settings``, replaced whole.

    Components read ``current`` each time (never a value copied from it earlier), so no
    component can run on old settings while another runs on new ones. Changes are made one at
    a time through ``change``; listeners (``on_change``) hear of each after the swap.
    """

    def __init__(self, settings: Settings) -> None:
        self._current = settings
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()

    @classmethod
    def of(cls, settings: Settings | SettingsHolder) -> SettingsHolder:
        """``settings`` if it is a holder, else a holder of its own (a component used alone)."""
        return settings if isinstance(settings, SettingsHolder) else cls(settings)

    @property
    def current(self) -> Settings:
        return self._current

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(old, new)`` after each change (on the changing thread)."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def change(self, edit: Callable[[Settings], Settings]) -> Settings:
        """Replace ``current`` with ``edit(current)``; ``edit`` may raise to change nothing.
        Changes are serialised: ``edit`` sees the settings no other change replaces meanwhile."""
        with self._lock:
            old = self._current
            new = edit(old)
            self._current = new
            listeners = self._listeners
            for listener in listeners:
                listener(old, new)
        return new


def _check_download_path(download: Path, config: Path, temp: Path, label: str) -> None:
    problem = download_folder_problem(download, config, temp)
    if problem is not None:
        raise SettingsError(f"{label}: {problem}; choose a folder of its own for downloads")


def save_settings(config_path: Path, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into ``settings.json``, atomically (a crash leaves old or new)."""
    path = config_path / OVERRIDES_FILE
    saved = read_saved_settings(config_path)
    saved.update({k: str(v) if isinstance(v, Path) else v for k, v in changes.items()})
    write_atomic(path, json.dumps(saved, indent=2, sort_keys=True) + "\n")


def ensure_folders(settings: Settings) -> None:
    """Create the data folders; a folder that cannot be made is a settings error."""
    for name in sorted(_PATH_FIELDS):
        path: Path = getattr(settings, name)
        try:
            if name == "config_path":
                private_folder(path)
            else:
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot create {path}: "
                                f"{exc.strerror}{_whose(exc.errno, _made_in(path))}") from None
        if not os.access(path, os.W_OK):
            read_only = os.statvfs(path).f_flag & os.ST_RDONLY
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: {path} is not writable"
                                f"{_whose(errno.EROFS if read_only else errno.EACCES, path)}")


def _made_in(path: Path) -> Path:
    """The folder ``path`` would be made in: its nearest ancestor that is there."""
    return next((folder for folder in path.parents if folder.exists()), path)


def _whose(code: int | None, path: Path) -> str:
    """What to do about a folder the service may not write: whose it must be."""
    if code == errno.EROFS:
        return " (its disk is read-only): choose a folder on a writable disk"
    if code not in (errno.EACCES, errno.EPERM):
        return ""
    import pwd

    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a user id with no name (a container's)
        user = str(os.geteuid())
    return (f" by the user the service runs as ({user}): give it the folder (sudo chown "
            f"{user} {path}), or choose another")


def check_ports(settings: Settings) -> None:
    """Both ports can be listened on; else a settings error that says which and why, before
    gunicorn retries for five seconds and the websocket fails with a traceback."""
    ports = {"port": settings.port, "ws_port": settings.websocket_port}
    if ports["port"] == ports["ws_port"]:
        raise SettingsError(f"{ENV_PREFIX}WS_PORT: must differ from {ENV_PREFIX}PORT "
                            f"({settings.port})")
    for name, port in ports.items():
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                settings.host or None, port, type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE)[0]
        except socket.gaierror as exc:
            raise SettingsError(f"{ENV_PREFIX}HOST: {settings.host!r} is not an address here: "
                                f"{exc.strerror}") from None
        try:
            with socket.socket(family, kind, proto) as probe:
                # as the servers themselves bind: a port left in TIME_WAIT is free
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            setting, why = name, exc.strerror or str(exc)
            if exc.errno == errno.EADDRINUSE:
                why = "already in use (is the appliance already running?)"
            elif exc.errno == errno.EACCES:
                why = "needs privileges (ports below 1024)"
            elif exc.errno == errno.EADDRNOTAVAIL:
                setting, why = "host", "not an address of this machine"
            if name == "ws_port" and not settings.ws_port:
                why += f"; the websocket uses the HTTP port + 1 unless {ENV_PREFIX}WS_PORT is set"
            raise SettingsError(f"{ENV_PREFIX}{setting.upper()}: cannot listen on "
                                f"{settings.host}:{port}: {why}") from None


def settings_table() -> str:
    """Markdown table of every setting and its default, for the README."""
    rows = ["| Environment | config.yml | Default | Meaning |", "|---|---|---|---|"]
    for f in FIELDS:
        default = f"`{f.default}`" if f.default != "" else "(empty)"
        rows.append(f"| `{f.env}` | `{f.name}` | {default} | {f.help} |")
    return "\n".join(rows)
