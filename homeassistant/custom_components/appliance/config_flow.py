"""Config flow: by hand (host, port, token or user and password) or found by zeroconf;
reauth when the credentials stop working; reconfigure; options.

Every path proves the connection before it saves anything: the open ``/api/health`` gives
the instance id (the entry's unique id, so one appliance is one entry whatever its address),
then ``/api/system/configuration`` proves the credentials.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from . import client_for
from .api import (
    ApplianceError,
    BadAnswer,
    CannotConnect,
    InvalidAuth,
    RequestRefused,
    base_path,
    valid_instance_id,
)
from .const import (
    CONF_BASE_PATH,
    CONF_CHECK_UPDATES,
    CONF_DEFAULT_PRESET,
    DEFAULT_PORT,
    DEFAULT_PRESET,
    DOMAIN,
)
from .coordinator import ApplianceConfigEntry

LOGGER = logging.getLogger(__package__)

_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
CREDENTIALS = {
    vol.Optional(CONF_TOKEN): _PASSWORD,
    vol.Optional(CONF_USERNAME): str,
    vol.Optional(CONF_PASSWORD): _PASSWORD,
}
CREDENTIAL_KEYS = (CONF_TOKEN, CONF_USERNAME, CONF_PASSWORD)
# A host name (letters of any script, digits, "-", "_", dots); an IPv6 address is checked
# apart. Anything else ("http://…", "host/path", "user@host", "host:port") would become
# another URL than the appliance's.
HOST_NAME = re.compile(r"[^\W][\w.-]{0,252}")


def _valid_host(host: str) -> bool:
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return HOST_NAME.fullmatch(host) is not None


def _address_schema(host: str | None = None, port: int = DEFAULT_PORT) -> dict[Any, Any]:
    return {
        vol.Required(CONF_HOST, default=host or vol.UNDEFINED): str,
        vol.Required(CONF_PORT, default=port): vol.All(vol.Coerce(int),
                                                       vol.Range(min=1, max=65535)),
        # (no default: a field left empty must be able to say "none")
        vol.Optional(CONF_BASE_PATH): str,
    }


def _address(data: Mapping[str, Any]) -> tuple[str, int, str]:
    """Where an entry's (or an announcement's) appliance answers."""
    return (str(data[CONF_HOST]), int(data[CONF_PORT]),
            base_path(data.get(CONF_BASE_PATH)) or "")


def form_credentials(user_input: Mapping[str, Any]) -> dict[str, str]:
    """The credentials given, empty ones dropped (a token wins over a user and password)."""
    given = {key: str(user_input[key]) for key in CREDENTIAL_KEYS if user_input.get(key)}
    for key in (CONF_TOKEN, CONF_USERNAME):  # pasted with a space or a line break around
        if key in given:
            given[key] = given[key].strip()
    if given.get(CONF_TOKEN):
        return {CONF_TOKEN: given[CONF_TOKEN]}
    return given


def _entry_data(user_input: Mapping[str, Any], address: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """An entry's data: host and port (from the form, or ``address``) and credentials."""
    where = address if address is not None else user_input
    data = {CONF_HOST: str(where[CONF_HOST]).strip(), CONF_PORT: where[CONF_PORT],
            **form_credentials(user_input)}
    if given := str(where.get(CONF_BASE_PATH) or "").strip():
        # typed without its leading "/" is the same path; one that is none stays as given
        # for the probe to refuse
        prefix = base_path(given if given.startswith("/") else "/" + given)
        if prefix != "":
            data[CONF_BASE_PATH] = given if prefix is None else prefix
    return data


def _shown(data: Mapping[str, Any]) -> str:
    host, port, prefix = _address(data)
    return f"{host}:{port}{prefix}"


class ApplianceConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    def __init__(self) -> None:
        self._discovered: dict[str, Any] = {}
        self._title = ""
        # The configured entry an announcement says has moved (zeroconf_move).
        self._moved: ApplianceConfigEntry | None = None
        # What the service said when it refused, or why it is not an appliance: shown in
        # the form's error ({error}).
        self._placeholders: dict[str, str] = {"error": ""}

    async def _probe(self, data: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """(instance id, errors) for an address and credentials; errors empty on success."""
        if not _valid_host(str(data[CONF_HOST])):
            return "", {CONF_HOST: "invalid_host"}
        if base_path(data.get(CONF_BASE_PATH)) is None:
            return "", {CONF_BASE_PATH: "invalid_base_path"}
        client = client_for(self.hass, dict(data))
        try:
            health = await client.health()
            await client.configuration()
            instance_id = str(health["instance_id"])
        except InvalidAuth:
            return "", {"base": "invalid_auth"}
        except CannotConnect:
            return "", {"base": "cannot_connect"}
        except RequestRefused as err:
            self._placeholders["error"] = str(err)
            # The service's refusals carry a code (421: a host name it does not answer to;
            # 429: too many attempts); another server's 404 does not.
            return "", {"base": "refused" if err.code else "not_appliance"}
        except BadAnswer as err:
            self._placeholders["error"] = str(err)
            return "", {"base": "not_appliance"}
        except Exception:  # a fault of this integration: the log has its traceback
            LOGGER.exception("unexpected failure probing the appliance at %s",
                             client.base_url)
            return "", {"base": "unknown"}
        host = data[CONF_HOST]
        self._title = f"Appliance ({host})"
        return instance_id, {}

    async def _update_entry(self, entry: ApplianceConfigEntry, data: dict[str, Any]
                            ) -> tuple[ConfigFlowResult | None, dict[str, str]]:
        """Reauth's and reconfigure's end: the same appliance, proven, or the errors."""
        instance_id, errors = await self._probe(data)
        if errors:
            return None, errors
        await self.async_set_unique_id(instance_id)
        self._abort_if_unique_id_mismatch(reason="wrong_appliance")
        return self.async_update_reload_and_abort(entry, data=data), {}

    # --- by hand -----------------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None
                              ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _entry_data(user_input)
            instance_id, errors = await self._probe(data)
            if not errors:
                await self.async_set_unique_id(instance_id)
                self._abort_if_unique_id_configured(
                    updates={CONF_HOST: data[CONF_HOST], CONF_PORT: data[CONF_PORT]})
                return self.async_create_entry(title=self._title, data=data)
        schema = vol.Schema({**_address_schema(), **CREDENTIALS})
        return self.async_show_form(
            step_id="user", data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors, description_placeholders=self._placeholders)

    # --- found on the network ----------------------------------------------------------------

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo
                                  ) -> ConfigFlowResult:
        instance_id = discovery_info.properties.get("id")
        if not valid_instance_id(instance_id):
            return self.async_abort(reason="no_instance_id")
        host, port = discovery_info.host, discovery_info.port
        if not _valid_host(str(host)) or not isinstance(port, int) or not 0 < port < 65536:
            return self.async_abort(reason="no_address")
        # Behind a reverse proxy that keeps a prefix: followed, but only as a path of that
        # address (never "//elsewhere", "../", "http://…").
        prefix = base_path(discovery_info.properties.get("base_path"))
        if prefix is None:
            return self.async_abort(reason="no_address")
        entry = await self.async_set_unique_id(instance_id)
        self._discovered = {CONF_HOST: host, CONF_PORT: port,
                            **({CONF_BASE_PATH: prefix} if prefix else {})}
        self.context["title_placeholders"] = {"host": host}
        if entry is not None:
            return await self._known_elsewhere(entry)
        if any(CONF_HOST in known.data and _address(known.data) == _address(self._discovered)
               for known in self._async_current_entries(include_ignore=False)):
            # A configured appliance's address announcing another id: the appliance there
            # was set up anew (its config folder lost). Not a second entry: its own entry
            # offers to adopt it (Repairs), once it has seen the new id there itself.
            return self.async_abort(reason="replaced")
        return await self.async_step_zeroconf_confirm()

    async def _known_elsewhere(self, entry: ApplianceConfigEntry) -> ConfigFlowResult:
        """A configured appliance announced at another address. Anyone on the network may
        announce any id (the id is no secret: every announcement and ``/api/health`` carry
        it), and moving the entry sends its credentials to the new address: the entry stays
        while its address still answers as its appliance, and moves only when the person
        says so."""
        if CONF_HOST not in entry.data or _address(entry.data) == _address(self._discovered):
            return self.async_abort(reason="already_configured")  # ignored, or the same
        try:
            health = await client_for(self.hass, dict(entry.data)).health()
        except ApplianceError:
            health = {}
        if health.get("instance_id") == entry.unique_id:
            return self.async_abort(reason="already_configured")
        self._moved = entry
        return await self.async_step_zeroconf_move()

    async def async_step_zeroconf_move(self, user_input: dict[str, Any] | None = None
                                       ) -> ConfigFlowResult:
        """The person confirms that their appliance moved to the announced address."""
        entry = self._moved
        assert entry is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**{key: value for key, value in entry.data.items()
                       if key != CONF_BASE_PATH}, **self._discovered}
            instance_id, errors = await self._probe(data)
            if not errors:
                if instance_id != entry.unique_id:
                    return self.async_abort(reason="wrong_appliance")
                return self.async_update_reload_and_abort(entry, data=data, reason="moved")
        return self.async_show_form(
            step_id="zeroconf_move", data_schema=vol.Schema({}), errors=errors,
            description_placeholders={
                **self._placeholders, "title": entry.title,
                "old": _shown(entry.data), "new": _shown(self._discovered)})

    async def async_step_zeroconf_confirm(self, user_input: dict[str, Any] | None = None
                                          ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**self._discovered, **form_credentials(user_input)}
            instance_id, errors = await self._probe(data)
            if not errors:
                if instance_id != self.unique_id:
                    return self.async_abort(reason="unique_id_mismatch")
                return self.async_create_entry(title=self._title, data=data)
        return self.async_show_form(
            step_id="zeroconf_confirm", data_schema=vol.Schema(CREDENTIALS), errors=errors,
            description_placeholders={**self._placeholders,
                                      "host": str(self._discovered[CONF_HOST]),
                                      "port": str(self._discovered[CONF_PORT])})

    # --- when the credentials stop working --------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None
                                        ) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            result, errors = await self._update_entry(entry, _entry_data(user_input, entry.data))
            if result is not None:
                return result
        return self.async_show_form(
            step_id="reauth_confirm", data_schema=vol.Schema(CREDENTIALS), errors=errors,
            description_placeholders={**self._placeholders, "title": entry.title})

    # --- a new address or new credentials ----------------------------------------------------

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None
                                     ) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            result, errors = await self._update_entry(entry, _entry_data(user_input))
            if result is not None:
                return result
        schema = vol.Schema({**_address_schema(entry.data[CONF_HOST], entry.data[CONF_PORT]),
                             **CREDENTIALS})
        suggested = {CONF_BASE_PATH: entry.data.get(CONF_BASE_PATH), **(user_input or {})}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors, description_placeholders=self._placeholders)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ApplianceConfigEntry) -> ApplianceOptionsFlow:
        return ApplianceOptionsFlow()


class ApplianceOptionsFlow(OptionsFlow):
    """The preset ``add_url`` uses when none is given, and whether to look for releases."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None
                              ) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        coordinator = getattr(self.config_entry, "runtime_data", None)
        presets = list(coordinator.data.presets) if coordinator and coordinator.data else []
        current = options.get(CONF_DEFAULT_PRESET, DEFAULT_PRESET)
        preset_field = vol.In(sorted({*presets, current})) if presets else str
        return self.async_show_form(step_id="init", data_schema=vol.Schema({
            vol.Required(CONF_DEFAULT_PRESET, default=current): preset_field,
            vol.Required(CONF_CHECK_UPDATES,
                         default=options.get(CONF_CHECK_UPDATES, True)): bool,
        }))
