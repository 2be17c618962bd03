"""Which service to talk to, and with which credentials.

Looked up in this order, the first that says something wins, for the address and for the
credentials separately:

1. the command line: ``--url`` (and ``--user``, whose password is asked at a prompt: a secret
   on the command line would show in the process list);
   credentials in an address (``http://user:token@host/``) are its source's, after ``--user``;
   they are taken out of it: the address is shown in messages, the credentials never are;
2. the environment: ``APPLIANCE_URL``, ``APPLIANCE_TOKEN``;
3. the client file ``$XDG_CONFIG_HOME/appliance/client.toml`` (``~/.config/…``): ``url``,
   ``token``, ``user``, ``password``; refused while it holds a secret and others may read it;
4. the local service (:class:`LocalService`, found by the caller from the service's own
   settings): its configured port, the token from its auth file when this user can read it,
   else ``YTP_AUTH_USERNAME``/``YTP_AUTH_PASSWORD``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

FILE_NAME = "client.toml"
DEFAULT_USER = "appliance"  # the login user of `appliance web passwd`
_SECRETS = ("token", "password")
# The ``user:password@`` of an address (up to its last "@" before the path, as URLs are read).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


class ConnectionFileProblem(Exception):
    """The client file cannot be used; the text says what to do."""


@dataclasses.dataclass(frozen=True)
class LocalService:
    """The service on this box as its own settings describe it."""

    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class Connection:
    url: str
    token: str | None = dataclasses.field(default=None, repr=False)
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    # Where the address came from, for messages ("--url", "APPLIANCE_URL", a file, …).
    source: str = ""

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None when there are no credentials."""
        if self.token:
            return f"Token {self.token}"
        if self.user and self.password is not None:
            pair = f"{self.user}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def with_password(self, user: str, password: str) -> Connection:
        return dataclasses.replace(self, token=None, user=user, password=password)

    @property
    def has_credentials(self) -> bool:
        return self.authorization() is not None


def config_file(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "appliance" / FILE_NAME


def read_config_file(path: Path) -> dict[str, str]:
    """The client file's values (empty when there is none)."""
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConnectionFileProblem(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConnectionFileProblem(f"{path} is not valid TOML: {exc}") from None
    values = {k: v for k, v in data.items() if k in {"url", "user", *_SECRETS}}
    for key, value in values.items():
        if not isinstance(value, str):
            raise ConnectionFileProblem(f"{path}: {key} must be a string")
    if any(values.get(k) for k in _SECRETS) and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConnectionFileProblem(
            f"{path} holds a secret but others may read it: chmod 600 {path}"
        )
    return values


def resolve(
    *,
    url: str | None = None,
    user: str | None = None,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    local: LocalService | None = None,
) -> Connection:
    """The connection the command line, environment, client file and local service describe.

    ``password`` goes with ``user`` (asked at a prompt by the caller). Raises
    :class:`ConnectionFileProblem` when no address is known or the client file is unusable.
    """
    env = os.environ if env is None else env
    path = config_file(env)
    file = read_config_file(path)
    for source, value in (("--url", url), ("APPLIANCE_URL", env.get("APPLIANCE_URL")),
                          (str(path), file.get("url"))):
        if value:
            base, where = value, source
            break
    else:
        if local is None:
            raise ConnectionFileProblem(
                "no service to connect to: give --url, set APPLIANCE_URL, or put url = "
                f'"http://HOST:PORT" in {path}'
            )
        base, where = local.url, "the local service"
    base, url_user, url_password = split_credentials(normalise_url(base))
    if user:
        return Connection(base, user=user, password=password, source=where)
    if url_user is not None:
        return Connection(base, user=url_user, password=url_password, source=where)
    token = env.get("APPLIANCE_TOKEN") or file.get("token")
    if token:
        return Connection(base, token=token, source=where)
    if file.get("password") is not None and file.get("password") != "":
        return Connection(base, user=file.get("user") or DEFAULT_USER,
                          password=file["password"], source=where)
    if local is not None and normalise_url(local.url) == base:
        return Connection(base, token=local.token, user=local.user, password=local.password,
                          source=where)
    return Connection(base, source=where)


def normalise_url(value: str) -> str:
    """``host:port`` and ``http://host:port/`` both become ``http://host:port``."""
    value = value.strip()
    if "://" not in value:
        value = "http://" + value
    return value.rstrip("/")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@``, and those (percent-decoded; the password ""
    when the address names a user only). By pattern, not parsed: an address that is no valid
    URL is shown in a message too, and must not show them either."""
    found = _USERINFO.match(url)
    if found is None:
        return url, None, None
    user, _, password = found.group(2).partition(":")
    return found.group(1) + url[found.end():], unquote(user), unquote(password)
