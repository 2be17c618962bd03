"""Push updates: one websocket per entry feeds the coordinator; REST fills in on (re)connect.

The coordinator never polls. Its ``_async_update_data`` takes a REST snapshot, used at setup
and after every reconnect (what happened while the link was down). Between snapshots, the
service's ``/ws`` events change the data in place. While the service is unreachable the
coordinator holds an error, so every entity is unavailable; the coordinator logs once when
that starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    ApplianceClient,
    ApplianceError,
    BadAnswer,
    CannotConnect,
    InvalidAuth,
    OtherAppliance,
    RequestRefused,
    capped,
    decode,
    mapping,
    records,
    refusing_redirects,
    shallow,
    unwrap_event,
)
from .const import (
    ACTIVE_STATUSES,
    CONF_CHECK_UPDATES,
    DOMAIN,
    EVENT_FAILED,
    EVENT_FINISHED,
    EVENT_QUEUED,
    MAX_NAME,
    MAX_TEXT,
    STATUS_PENDING,
)
from .identity import async_check_identity
from .redaction import shown_text

LOGGER = logging.getLogger(__package__)

# A snapshot as a whole (each request has its own bound, and the tasks are read up to 100
# pages: a service answering each just within it would hold a setup for most of an hour).
SNAPSHOT_TIMEOUT = 120.0
RECONNECT_MIN = 1.0
RECONNECT_MAX = 30.0
RELEASE_CHECK_INTERVAL = timedelta(hours=12)
# A yt-dlp update (pip, an import and extract check, perhaps a roll back) is followed this
# often, for at most this long.
YTDLP_UPDATE_POLL = 1.0
YTDLP_UPDATE_TIMEOUT = 900.0
# Counters the event stream does not carry (failed total, free disk) are re-read this long
# after the last state change of a burst.
COUNTS_COOLDOWN = 1.0
# The entities follow a download's progress (``item_updated``) at most this often, the first
# change of a burst at once and the last at its end: progress comes twice a second per
# running download, and every change of a sensor is a row in Home Assistant's recorder (on a
# Raspberry Pi's SD card); a service that floods the stream costs no more than that either.
# So is every other change (pause, the download folder's disk, a task, a download added,
# finished, failed, cancelled or removed): a service may send those by the thousand a second
# too (a bulk add of 2,000 links is 2,000 ``item_added``). The bus events automations use
# stay one per download, each fired as its change is applied, with the download's own data
# (Home Assistant's transmission fires one per torrent and writes its entities once per
# poll; plex coalesces its pushed updates the same way, a second apart, the first at once).
# The changes that fire one are coalesced apart from the rest: a download that finishes
# just after its progress is shown before its event fires, as is the first of a burst of
# them; an automation that reads a sensor on a later one of the burst finds it up to
# PUBLISH_COOLDOWN later (the event's data is the download's word).
PUBLISH_COOLDOWN = 1.0

# The queue's items followed, each as much as the entities need (its status and speed): a
# queue of a hundred thousand costs a few MiB, a service that names a new id in every event
# no more than that (past it, new ids are not followed).
MAX_QUEUE = 100_000
QUEUE_FIELDS = ("status", "speed")
# An item's id as the service makes them is a UUID (36 characters): a longer one is not
# followed (each followed id is a key kept for the entry's life, each text a value).
MAX_ITEM_ID = 128
# Presets offered in the options form (a choice of each): a service's list of thousands,
# or a name of megabytes, is no form's.
MAX_PRESETS = 1000
# Subscriptions shown, each a device with two entities that Home Assistant's registries keep
# on disk: a service that names a new task in every event must not fill them (past it, new
# tasks are not shown).
MAX_TASKS = 1000
# What the entities show of a task, each field cut to MAX_TEXT: a task of megabytes (an
# event of the stream may be 4 MiB) is not kept whole, once per task.
TASK_FIELDS = ("id", "name", "enabled", "url", "timer", "preset", "folder")

# Events of the service's /ws that change an item; each carries the item (or its id).
ITEM_EVENTS = frozenset({"item_added", "item_updated", "item_completed", "item_error",
                         "item_cancelled", "item_deleted", "item_moved"})

type ApplianceConfigEntry = ConfigEntry[ApplianceCoordinator]


@dataclasses.dataclass
class ApplianceData:
    version: str
    paused: bool
    queue: dict[str, dict[str, Any]]
    failed: int
    disk_free: int | None
    last_finished: dict[str, Any] | None
    presets: list[str]
    tasks: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    release: dict[str, Any] | None = None
    ytdlp: dict[str, Any] | None = None
    # Why no download starts (the download folder's disk is not mounted), or None.
    folder_problem: str | None = None

    @property
    def active(self) -> int:
        return sum(1 for item in self.queue.values() if item.get("status") in ACTIVE_STATUSES)

    @property
    def queued(self) -> int:
        return sum(1 for item in self.queue.values() if item.get("status") == STATUS_PENDING)

    @property
    def speed(self) -> float:
        # ``speed`` is yt-dlp's bytes per second (``speed_text`` is its display form); JSON
        # as Python reads it may also say NaN or Infinity, which no sensor can show.
        return float(sum(speed for item in self.queue.values()
                         if item.get("status") in ACTIVE_STATUSES
                         and isinstance(speed := item.get("speed"), int | float)
                         and math.isfinite(speed) and speed >= 0))


def _problem(figures: dict[str, Any]) -> str | None:
    """Why the service's downloads wait for its download folder's disk: from its figures
    (``download_folder_problem``) or the event that says it changed (``problem``)."""
    problem = figures.get("download_folder_problem", figures.get("problem"))
    return problem if isinstance(problem, str) and problem else None


def _followed(item: dict[str, Any]) -> dict[str, Any]:
    """What the entities need of a queue item."""
    return {key: capped(item[key], MAX_NAME) for key in QUEUE_FIELDS if key in item}


def _followed_id(item: dict[str, Any]) -> bool:
    return isinstance(item_id := item.get("id"), str) and len(item_id) <= MAX_ITEM_ID


def followed_task(task: dict[str, Any]) -> dict[str, Any]:
    """What the entities need of a task (the snapshot's, an event's, a change's answer)."""
    return {key: capped(task[key], MAX_TEXT) for key in TASK_FIELDS if key in task}


def failure(err: ApplianceError) -> dict[str, Any]:
    """The translated reason of a failure, as an exception of Home Assistant's takes it."""
    if isinstance(err, OtherAppliance):
        return {"translation_domain": DOMAIN, "translation_key": "other_appliance",
                "translation_placeholders": {"found": err.found}}
    key = ("bad_answer" if isinstance(err, BadAnswer)
           else "refused" if isinstance(err, RequestRefused) else "cannot_connect")
    return {"translation_domain": DOMAIN, "translation_key": key,
            "translation_placeholders": {"error": str(err)}}


def count(value: Any) -> int | None:
    """A whole number of the service's (an id, a count, bytes), or None when the answer has
    something else there (a bool, a text, a negative number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


async def together(*requests: Coroutine[Any, Any, Any]) -> list[Any]:
    """Requests to the service run at once; the first to fail cancels the others (each would
    hold its connection up to its own bound, 30 s, behind an answer already lost) and is
    raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(request) for request in requests]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


# An item's fields that may hold its link.
_LINKED = frozenset({"title", "url", "error"})


def event_data(item: dict[str, Any], instance_id: str | None) -> dict[str, Any]:
    """What an automation gets for a download: the service's own names for its fields, each
    cut to :data:`MAX_TEXT` (the recorder keeps no event data past 32 KiB), its links as an
    entity shows them (the recorder keeps every event: a link's password and passkey stay
    out; ``appliance.retry`` of its ``id`` queues it again with all it had)."""
    return {
        "instance_id": instance_id,
        "id": capped(item.get("id"), MAX_TEXT),
        **{key: capped((shown_text(item.get(key)) if key in _LINKED else item.get(key)) or "",
                       MAX_TEXT)
           for key in ("title", "url", "preset", "folder", "filename", "error", "status")},
    }


class ApplianceCoordinator(DataUpdateCoordinator[ApplianceData]):
    config_entry: ApplianceConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ApplianceConfigEntry,
                 client: ApplianceClient) -> None:
        super().__init__(hass, LOGGER, config_entry=entry,
                         name=f"{DOMAIN} {client.host}:{client.port}")
        self.client = client
        # The event stream's own session (on Home Assistant's connections, closed with the
        # entry): Home Assistant's shared one follows a redirect of the handshake.
        self.websocket_session = async_create_clientsession(
            hass, trace_configs=[refusing_redirects()])
        self.configuration: dict[str, Any] = {}
        # How long the event stream waits before its next connection: doubles up to
        # RECONNECT_MAX while connections fail or streams end at once.
        self.reconnect_delay = RECONNECT_MIN
        # What _say_why said of the outage going on (None: nothing yet, or connected).
        self._said: str | None = None
        self._counts = Debouncer(hass, LOGGER, cooldown=COUNTS_COOLDOWN, immediate=False,
                                 function=self._refresh_counts)
        self._publish = Debouncer(hass, LOGGER, cooldown=PUBLISH_COOLDOWN, immediate=True,
                                  function=self._async_publish)
        self._publish_fired = Debouncer(hass, LOGGER, cooldown=PUBLISH_COOLDOWN,
                                        immediate=True, function=self._async_publish)

    async def _async_update_data(self) -> ApplianceData:
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT):
                return await self._snapshot()
        except TimeoutError as err:
            raise UpdateFailed(**failure(CannotConnect(
                f"no whole answer within {SNAPSHOT_TIMEOUT:g} s"))) from err
        except InvalidAuth as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN,
                                        translation_key="invalid_auth") from err
        except ApplianceError as err:
            raise UpdateFailed(**failure(err)) from err

    async def _snapshot(self) -> ApplianceData:
        health = await async_check_identity(self.hass, self.config_entry, self.client)
        configuration = await self.client.configuration(QUEUE_FIELDS)
        stats, last, tasks = await together(
            self.client.stats(), self.client.last_finished(), self.client.tasks())
        self.configuration = shallow(configuration)
        # A field of the wrong type counts as absent: one odd value must not keep every
        # entity unavailable.
        return ApplianceData(
            version=str(mapping(configuration.get("app")).get("version") or ""),
            paused=configuration.get("paused") is True,
            queue=dict(itertools.islice(
                ((item["id"], _followed(item)) for item in records(configuration.get("queue"))
                 if _followed_id(item)), MAX_QUEUE)),
            failed=count(stats.get("failed")) or 0,
            disk_free=count(health.get("download_path_free_bytes")),
            folder_problem=_problem(stats),
            last_finished=shallow(last),
            presets=list(itertools.islice(
                (name for p in records(configuration.get("presets"))
                 if isinstance(name := p.get("name"), str) and len(name) <= MAX_NAME),
                MAX_PRESETS)),
            tasks=dict(itertools.islice(
                ((task_id, followed_task(task)) for task in tasks
                 if (task_id := count(task.get("id"))) is not None), MAX_TASKS)),
            release=self.data.release if self.data else None,
            ytdlp=self.data.ytdlp if self.data else None,
        )

    async def _refresh_counts(self) -> None:
        try:
            stats, health = await together(self.client.stats(), self.client.health())
        except InvalidAuth:  # the open event stream outlives a new token; requests do not
            self.config_entry.async_start_reauth(self.hass)
            return
        except ApplianceError as err:  # the event stream notices an outage on its own
            LOGGER.debug("counter refresh failed: %s", err)
            return
        if self.data is not None:
            self.data.failed = count(stats.get("failed")) or 0
            self.data.disk_free = count(health.get("download_path_free_bytes"))
            self.data.folder_problem = _problem(stats)
            self.async_set_updated_data(self.data)

    # --- the release checks ------------------------------------------------------------------

    async def async_check_releases(self, _now: Any = None) -> None:
        """yt-dlp's release (always: the service answers from its own cache, off-line safe)
        and the appliance's (when the entry's option asks for it)."""
        try:
            ytdlp = await self.client.ytdlp()
        except ApplianceError as err:
            LOGGER.debug("yt-dlp release check failed: %s", err)
        else:
            self._set_ytdlp(ytdlp)
        if not self.config_entry.options.get(CONF_CHECK_UPDATES, True):
            return
        try:
            release = await self.client.check_updates()
        except ApplianceError as err:
            LOGGER.debug("release check failed: %s", err)
            return
        if self.data is not None and release is not None:
            self.data.release = shallow(release)
            self.async_set_updated_data(self.data)

    def _set_ytdlp(self, status: dict[str, Any] | None) -> None:
        if self.data is not None and status is not None:
            self.data.ytdlp = shallow(status)
            self.async_set_updated_data(self.data)

    async def async_update_ytdlp(self) -> dict[str, Any]:
        """Start the service's yt-dlp update and follow it to its end (it installs, checks
        and may roll back, in a thread of its own); the service's last word on it."""
        await self.client.update_ytdlp()
        deadline = time.monotonic() + YTDLP_UPDATE_TIMEOUT
        while True:
            status = await self.client.ytdlp() or {}
            if mapping(status.get("update")).get("state") != "running" \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(YTDLP_UPDATE_POLL)
        self._set_ytdlp(status)
        return status

    async def async_first_refresh(self) -> None:
        """The first snapshot; when it fails, setup is retried with the reason shown (Home
        Assistant's own first refresh retries with none)."""
        try:
            await self.async_config_entry_first_refresh()
        except ConfigEntryNotReady as err:
            cause = err.__cause__
            if isinstance(cause, UpdateFailed) and cause.translation_key:
                raise ConfigEntryNotReady(
                    translation_domain=DOMAIN, translation_key=cause.translation_key,
                    translation_placeholders=cause.translation_placeholders) from cause
            raise

    async def async_connect(self) -> aiohttp.ClientWebSocketResponse:
        """The event stream, opened before the snapshot it completes: nothing that happens
        in between is missed. Setup fails (and is retried, or asks for reauth) without it."""
        try:
            return await self._open()
        except InvalidAuth as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN,
                                        translation_key="invalid_auth") from err
        except ApplianceError as err:
            raise ConfigEntryNotReady(**failure(err)) from err

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        """The event stream where the service's configuration says it is now: a restart
        may have moved it (YTP_WS_PORT changed), and the last snapshot's would be tried for
        ever. The address must answer as the entry's appliance first: the credentials go
        nowhere else."""
        await async_check_identity(self.hass, self.config_entry, self.client)
        self.configuration = shallow(await self.client.configuration())
        return await self.client.connect(self.configuration, self.websocket_session)

    def async_start(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        """Read the event stream and check for releases for the entry's lifetime."""
        entry = self.config_entry
        entry.async_create_background_task(self.hass, self._listen(websocket),
                                           f"{DOMAIN} events")
        entry.async_on_unload(async_track_time_interval(
            self.hass, self.async_check_releases, RELEASE_CHECK_INTERVAL))
        entry.async_on_unload(self._counts.async_shutdown)
        entry.async_on_unload(self._publish.async_shutdown)
        entry.async_on_unload(self._publish_fired.async_shutdown)

    # --- the event stream --------------------------------------------------------------------

    async def _listen(self, websocket: aiohttp.ClientWebSocketResponse | None) -> None:
        while True:
            if websocket is None:
                try:
                    websocket = await self._open()
                except InvalidAuth:
                    self.async_set_update_error(ConfigEntryAuthFailed("invalid credentials"))
                    self.config_entry.async_start_reauth(self.hass)
                    return
                except ApplianceError as err:
                    self.async_set_update_error(UpdateFailed(**failure(err)))
                    self._say_why(err)
                    await self._back_off()
                    continue
                try:
                    await self.async_refresh()  # what happened while the stream was down
                except BaseException:  # unloaded meanwhile (cancelled): no stream left open
                    await websocket.close()
                    raise
                if isinstance(self.last_exception, ConfigEntryAuthFailed):
                    await websocket.close()
                    return  # the refresh started reauth; its new setup starts a new stream
                if not self.last_update_success:
                    # No snapshot (the service still starting, say): events alone would
                    # never make the entities available again; try the whole link again.
                    await websocket.close()
                    websocket = None
                    if isinstance(cause := getattr(self.last_exception, "__cause__", None),
                                  ApplianceError):
                        self._say_why(cause)
                    await self._back_off()
                    continue
                self._said = None
            opened = time.monotonic()
            try:
                await self._read(websocket)
            finally:
                await websocket.close()
            websocket = None
            self.async_set_update_error(UpdateFailed("the event stream closed"))
            # Only a stream that lasted makes the next outage a new one: a service that
            # closes each stream at once would otherwise get a reconnect and a full
            # snapshot every second, for ever.
            if time.monotonic() - opened >= RECONNECT_MAX:
                self.reconnect_delay = RECONNECT_MIN
            await self._back_off()

    def _say_why(self, err: ApplianceError) -> None:
        """Why the stream does not open again, in the log once per reason and outage, when
        it is more than an outage: the coordinator logs only the first failure of one ("the
        event stream closed"), and an address that answers what no appliance would (a
        redirect, junk, another appliance, a refusal) is the person's to look at."""
        if isinstance(err, CannotConnect) or str(err) == self._said:
            return
        self._said = str(err)
        LOGGER.warning("%s: the event stream does not open again: %s", self.name, err)

    async def _back_off(self) -> None:
        await asyncio.sleep(self.reconnect_delay)
        self.reconnect_delay = min(self.reconnect_delay * 2, RECONNECT_MAX)

    async def _read(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in websocket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                event = unwrap_event(await decode(message.data))
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                continue
            if event is None:
                continue
            try:
                self._apply(*event)
            except Exception:  # one event that cannot be shown must not end the stream
                LOGGER.exception("could not apply the appliance's %r event", event[0])

    @callback
    def _apply(self, event: str, payload: Any) -> None:
        data = self.data
        if data is None:
            return
        fired = None
        if event in ("paused", "resumed"):
            data.paused = event == "paused"
        elif event in ITEM_EVENTS and isinstance(payload, dict) \
                and isinstance(payload.get("id"), str):
            fired = self._apply_item(data, event, payload)
        elif event == "config_update" and isinstance(payload, dict) \
                and payload.get("feature") == "tasks" \
                and (task_id := count(mapping(payload.get("data")).get("id"))) is not None:
            if payload.get("action") == "delete":
                data.tasks.pop(task_id, None)
            elif task_id in data.tasks or len(data.tasks) < MAX_TASKS:  # create, update
                data.tasks[task_id] = followed_task(payload["data"])
        elif event == "download_folder" and isinstance(payload, dict):
            data.folder_problem = _problem(payload)
        else:  # other messages, replies to other clients' commands, the greeting
            return
        if fired is None:
            self._publish.async_schedule_call()
            return
        # The states first: the first change of a burst is shown before its automations run.
        self._publish_fired.async_schedule_call()
        self.hass.bus.async_fire(*fired)

    @callback
    def _async_publish(self) -> None:
        self.async_update_listeners()

    def _apply_item(self, data: ApplianceData, event: str, item: dict[str, Any]
                    ) -> tuple[str, dict[str, Any]] | None:
        """An item's change applied; the bus event it fires (type and data), if any."""
        item_id = item["id"]
        instance = self.config_entry.unique_id
        if event in ("item_added", "item_updated"):
            if item.get("kind", "queue") == "queue":
                known = data.queue.get(item_id)
                if known is not None or (len(data.queue) < MAX_QUEUE
                                         and _followed_id(item)):
                    data.queue[item_id] = {**(known or {}), **_followed(item)}
            else:
                data.queue.pop(item_id, None)
            return (EVENT_QUEUED, event_data(item, instance)) if event == "item_added" \
                else None
        data.queue.pop(item_id, None)
        if event != "item_moved":  # a move is followed by the event that says how it ended
            self._counts.async_schedule_call()
        if event == "item_completed":
            data.last_finished = shallow(item)
            return EVENT_FINISHED, event_data(item, instance)
        if event == "item_error":
            return EVENT_FAILED, event_data(item, instance)
        return None
