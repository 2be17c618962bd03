"""Every setting the service has, declared once: name, default, how a value from a file, the
environment or the API is converted and checked, and the help text the README's table and
``appliance settings`` print. ``config.py`` builds the one ``Settings`` object from these."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .host_names import is_host_name

ENV_PREFIX = "YTP_"
# The longest a time setting in seconds may be: a day is past any real use of each, and a
# wait far longer fails in the thread that makes it (Event.wait(1e10): OverflowError).
DAY = 24 * 3600


class SettingsError(ValueError):
    """A setting has a value the service cannot run with. The message names the setting."""


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _to_float(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    # "nan" passes every bound (each comparison is false) and turned the stall check off;
    # "inf" or "1e400" stopped the start (int(inf)) or a thread's wait (OverflowError).
    if not math.isfinite(number):
        raise ValueError(f"expected a number, got {value!r}")
    return number


def _to_str(value: Any) -> str:
    text = "" if value is None else str(value)
    # A path with one (config.yml may write "\0") stopped the start with a traceback. The
    # value is not repeated: it may be a password, and this line goes to the journal.
    if "\x00" in text:
        raise ValueError(f"a NUL byte cannot be part of a setting (character "
                         f"{text.index(chr(0)) + 1} of {len(text)})")
    return text


def _list(value: Any) -> list[str]:
    """The non-empty items of a comma-separated string or a YAML list."""
    if value is None:
        return []
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    return [text for text in (str(p).strip() for p in parts) if text]


def _to_origins(value: Any) -> tuple[str, ...]:
    """Comma-separated (or a YAML list of) browser origins: ``scheme://host[:port]``."""
    origins: list[str] = []
    for part in (p.rstrip("/") for p in _list(value)):
        if not part:
            continue
        url = urlsplit(part)
        if url.scheme.lower() not in {"http", "https"} or not url.netloc or url.path \
                or url.query or url.fragment or "*" in part:
            raise ValueError(f"expected origins like https://host:port, got {part!r}")
        origins.append(f"{url.scheme.lower()}://{url.netloc.lower()}")
    return tuple(dict.fromkeys(origins))


def _to_zone(value: Any) -> str:
    """An IANA time zone name (``Europe/Berlin``); empty: the system's."""
    name = _to_str(value).strip()
    if name:
        import zoneinfo  # with a zone only: gunicorn's master holds what it imports

        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected a time zone like Europe/Berlin, got {name!r}") from None
    return name


def _to_networks(value: Any) -> tuple[str, ...]:
    """Comma-separated (or a YAML list of) IP addresses or networks (``10.0.0.0/8``)."""
    networks: list[str] = []
    for part in _list(value):
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(f"expected IP addresses or networks like 10.0.0.0/8, got {part!r}"
                             ) from None
    return tuple(dict.fromkeys(networks))


def _to_host_names(value: Any) -> tuple[str, ...]:
    """Comma-separated (or a YAML list of) host names, ``*.domain`` or ``*``."""
    names: list[str] = []
    for part in _list(value):
        name = part.lower().removesuffix(".") if part != "*" else part
        if part != "*" and not is_host_name(name.removeprefix("*.")):
            raise ValueError(f"expected host names like media.example.com or *.example.com "
                             f"(no scheme or port), got {part!r}")
        names.append(name)
    return tuple(dict.fromkeys(names))


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    default: Any
    convert: Callable[[Any], Any]
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


FIELDS: tuple[Field, ...] = (
    Field("host", "0.0.0.0", _to_str, "Address the HTTP API listens on."),
    Field("port", 8081, _to_int, "HTTP API port.", 1, 65535),
    Field("ws_port", 0, _to_int, "Websocket port; 0 means HTTP port + 1.", 0, 65535),
    Field("config_path", "./var/config", _to_str, "Database, logs, archive and config.yml."),
    Field("download_path", "./var/downloads", _to_str, "Where finished files land."),
    Field("temp_path", "./var/tmp", _to_str, "Partial downloads (kept across restarts)."),
    Field("base_path", "/", _to_str, "URL prefix of the API and websocket (reverse proxy)."),
    Field("max_workers", 3, _to_int, "Downloads running at once.", 1, 64),
    Field(
        "max_workers_per_extractor", 2, _to_int, "Downloads at once from one site.", 1, 64
    ),
    Field(
        "warm_workers", 1, _to_int,
        "yt-dlp processes kept ready ahead of need; with a zygote (Linux 5.3 or later) any "
        "value above 0 keeps the zygote ready and each download process is forked from it "
        "on demand.", 0, 16,
    ),
    Field(
        "worker_idle_timeout", 120.0, _to_float,
        "Seconds the yt-dlp processes made ready at start wait for a first download before "
        "they are retired.", 1, DAY,
    ),
    Field(
        "worker_linger", 5.0, _to_float,
        "Seconds the zygote and the last used yt-dlp process stay after the last download "
        "or extraction; a later one starts them afresh (about a second of CPU).", 0, DAY,
    ),
    Field("extract_info_timeout", 70.0, _to_float, "Seconds allowed to read a URL's info.", 1,
          DAY),
    Field(
        "extract_info_concurrency", 2, _to_int, "URL info extractions at once.", 1, 16
    ),
    Field(
        "stall_timeout", 600.0, _to_float,
        "Seconds without progress before a download is stopped as stalled and marked as an "
        "error (it can be retried). Progress is what yt-dlp reports, or any work its "
        "processes do (CPU time, bytes read or stored, its temp files growing), so a live "
        "stream or a long merge in ffmpeg is not stopped; an ffmpeg hung on a dead "
        "connection is.", 5, DAY,
    ),
    Field("url_info_cache_ttl", 300.0, _to_float, "Seconds /api/yt-dlp/url/info is cached.", 0,
          DAY),
    Field("output_template", "%(title)s.%(ext)s", _to_str, "Default yt-dlp output template."),
    Field("ytdlp_cli", "", _to_str, "yt-dlp options for every download (item options win)."),
    Field("default_pagination", 50, _to_int, "Default per_page of paginated lists.", 1, 1000),
    Field("folder_depth", 2, _to_int, "Folder levels listed in system/configuration.", 0, 10),
    Field("max_body", 4 * 1024 * 1024, _to_int, "Largest request body in bytes.", 1024),
    Field(
        "max_connections_per_address", 64, _to_int,
        "Connections one client address may hold open, on each port (an IPv6 /64 four times "
        "that); more are closed at once. "
        "YTP_TRUSTED_PROXIES are not capped.", 1, 1000,
    ),
    # A small box's share for websocket clients that do not read (a 1 GB Raspberry Pi runs
    # the whole service in some 80 MB); see appliance/ws/budget.py.
    Field(
        "ws_backlog_budget", 64 * 2**20, _to_int,
        "Bytes all websocket clients together may have waiting to be sent (frames, their "
        "bookkeeping, socket write buffers); past it, the client holding the most is closed "
        "(1013) and reconnects. Each client also holds at most 10,000 state frames or 16 MiB.",
        2**20, 2**40,
    ),
    Field(
        "db_backups", 3, _to_int,
        "Daily database backups kept in the config folder's backups/; 0: none.", 0, 100,
    ),
    Field(
        "cors_origins", "", _to_origins,
        "Browser origins allowed to call the API (comma-separated); empty: CORS off.",
    ),
    Field(
        "trusted_proxies", "", _to_networks,
        "Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For "
        "names the client and whose X-Forwarded-Host and -Proto the host of links and "
        "redirects; empty: none names the client, one on this machine the host.",
    ),
    Field(
        "allowed_hosts", "", _to_host_names,
        "While auth is off, host names the service answers to besides IP addresses, "
        "localhost, one-label and LAN names (.local, .lan, .home.arpa, .internal) and "
        "YTP_CORS_ORIGINS: comma-separated, *.example.com for a domain, * for any (DNS "
        "rebinding guard).",
    ),
    Field("auth_username", "", _to_str, "Basic auth user (with auth_password)."),
    Field("auth_password", "", _to_str, "Basic auth password (with auth_username)."),
    Field("console_enabled", False, _to_bool, "Allow the yt-dlp console endpoints."),
    Field("remove_files", False, _to_bool, "Allow deleting files when items are deleted."),
    Field(
        "keep_archive", True, _to_bool,
        "Record downloads in the default archive and skip what it holds.",
    ),
    Field(
        "log_level", "info", lambda v: str(v).strip().lower(), "Logging level.",
        choices=("debug", "info", "warning", "error"),
    ),
    Field(
        "file_logging", True, _to_bool,
        "Also log to logs/appliance.log in the config folder (5 MB x 5 kept); for /api/logs.",
    ),
    Field(
        "max_streams", 3, _to_int,
        "Live streams (log stream, terminal) open at once; each has a request thread of its own.",
        1, 6,
    ),
    Field(
        "max_transfers", 16, _to_int,
        "Files over 1 MiB being sent at once (downloads, direct play, zips); each has a request "
        "thread of its own. One more gets 503 at once; one client may hold half (429 past that).",
        1, 64,
    ),
    Field(
        "console_timeout", 300.0, _to_float,
        "Seconds a /api/system/terminal command may run before it is killed.", 1, DAY,
    ),
    Field("dev_mode", False, _to_bool, "Enable the /api/dev/* diagnostics."),
    Field(
        "check_for_updates", False, _to_bool,
        "Let POST /api/system/check-updates ask update_check_url for a newer release.",
    ),
    Field(
        "update_check_url", "https://pypi.org/pypi/appliance/json", _to_str,
        "PyPI JSON API address the update check reads (3 s timeout).",
    ),
    Field(
        "notify_timeout", 10.0, _to_float,
        "Seconds one notification send may take (webhook or Apprise).", 0.1, 300,
    ),
    Field(
        "notify_retries", 3, _to_int,
        "Retries of a notification after a transient failure (timeout, 5xx, 429).", 0, 10,
    ),
    Field(
        "notify_retry_delay", 2.0, _to_float,
        "Seconds before the first notification retry; doubled for each next one.", 0.01, 300,
    ),
    Field(
        "notify_burst_window", 5.0, _to_float,
        "Quiet seconds before a chat (Apprise) target gets one summary of a burst; 0: no "
        "merging.", 0, 600,
    ),
    Field("tasks_timezone", "", _to_zone,
          "Time zone of task timers (IANA name, e.g. Europe/Berlin); empty: the system's."),
    Field(
        "tasks_spread", 30.0, _to_float,
        "Largest random delay in seconds added to a timed task run, so that tasks due in the "
        "same minute do not all start at once.", 0, 3600,
    ),
    Field("tasks_concurrency", 2, _to_int, "Task runs (feed reads, listings) at once.", 1, 16),
    Field("executions_kept", 500, _to_int, "Task executions kept (the newest).", 10, 100000),
    Field(
        "youtube_base_url", "https://www.youtube.com", _to_str,
        "Where YouTube channel and playlist feeds (feeds/videos.xml) are read.",
    ),
    # --- files and player (issue 13) ---
    Field("browser_enabled", True, _to_bool, "Allow the file browser (/api/file/browser)."),
    Field(
        "browser_control_enabled", False, _to_bool,
        "Allow the file browser's actions: rename, delete, move, new folder.",
    ),
    Field(
        "file_watch", True, _to_bool,
        "Watch the download folder (inotify); off for a network share, which only rescans.",
    ),
    Field(
        "file_rescan_interval", 60.0, _to_float,
        "Seconds between rescans of a download folder that is not watched (10x that when "
        "watched, for lost events).", 1, DAY,
    ),
    Field(
        "send_timeout", 30.0, _to_float,
        "Seconds a response may make no progress (a client that stopped reading) before the "
        "connection is closed; after that long it must also average 16 KiB/s.", 1, 3600,
    ),
    Field(
        "fetch_private_addresses", False, _to_bool,
        "Let /api/thumbnail (and a chat message's picture) fetch from this machine's own "
        "and private network addresses (never link-local ones, the cloud's metadata service).",
    ),
    Field(
        "background_url", "", _to_str,
        "Image URL that /api/random/background fetches (a random-image service); empty: 404.",
    ),
    Field("player_max_ffmpeg", 2, _to_int, "ffmpeg processes the player runs at once.", 1, 16),
    Field(
        "player_encoder", "libx264", _to_str,
        "ffmpeg video encoder for segments whose codec a browser cannot play.",
    ),
    Field(
        "ytdlp_index_url", "https://pypi.org/simple", _to_str,
        "Package index (simple API: PEP 691 JSON or PEP 503 HTML pages) that yt-dlp updates "
        "come from.",
    ),
    Field(
        "ytdlp_update_interval", 0.0, _to_float,
        "Hours between scheduled yt-dlp updates; 0: off (POST /api/system/ytdlp/update or "
        "`appliance ytdlp update` still work).", 0, 366 * 24,
    ),
    Field(
        "ytdlp_check_url", "", _to_str,
        "A URL the new yt-dlp must read after an update, else it is rolled back; empty: an "
        "offline check (it imports and knows its extractors).",
    ),
    Field(
        "zeroconf", True, _to_bool,
        "Announce the service on the local network (mDNS `_appliance._tcp`) so Home "
        "Assistant finds it.",
    ),
)
