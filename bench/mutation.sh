#!/usr/bin/env bash
# Mutation testing (mutmut 3): which share of small, deliberate bugs in a module the tests
# catch. Usage: bench/mutation.sh TARGET   with TARGET one of: auth, options, engine,
# files, tasks, player, store, notify, ws, edge, edge2, api-config, api-items, engine-rest,
# queue, tui, system, core, procs, homeassistant.
#
# Runs in a scratch copy (mutmut rewrites the code it mutates under ./mutants), with only the
# tests that exercise the target. Prints mutmut's summary and the share killed; the survivors
# are listed by `mutmut results` in the scratch folder. Environment: MUTATION_DIR (the scratch
# folder; reusing one resumes a run), MUTATION_JOBS (mutants at a time, default 2),
# MUTATION_SAMPLE=N (every Nth mutant only, for a figure within the time at hand),
# MUTATION_TIMEOUT_MULTIPLIER (mutmut's wall bound per mutant, this times its tests' time in
# the stats run; mutmut's default 15 let a mutant whose tests each wait out a deadline take
# half an hour: such a mutant counts as a timeout sooner).
set -euo pipefail

# The whole script is read before it runs, and exits with main: editing it meanwhile cannot
# derail a long run (bash would read on where the old file ended).
main() {
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/.venv/bin/python"
target="${1:?usage: bench/mutation.sh auth|options|engine|files|tasks|player|store|notify|ws|edge|edge2|api-config|api-items|engine-rest|queue|tui|system|core|procs|homeassistant}"

case "$target" in
  auth)    mutate="appliance/auth/*"
           tests="tests/test_auth.py tests/test_auth_rules.py tests/test_authenticator.py tests/test_cross_site.py tests/test_guessing.py tests/test_host_names.py tests/test_two_passwords.py tests/test_guess_budget.py tests/test_auth_years.py" ;;
  options) mutate="appliance/engine/options.py"
           tests="tests/test_option_policy.py tests/test_shaping.py tests/test_archive_store.py tests/test_option_policy_paths.py tests/test_system_endpoints.py tests/test_option_smuggling.py" ;;
  # The engine's state transitions: the stop reasons (runs.py), the deletes (deleting.py: what
  # a delete removes, and never a file another item records) and the methods of the engine
  # that change an item's state (see bench/mutation_engine.txt); the tests that drive them.
  engine)  mutate="appliance/engine/engine.py appliance/engine/edits.py appliance/engine/downloading.py appliance/engine/extraction.py appliance/engine/runs.py appliance/engine/file_removal.py appliance/engine/deleting.py"
           # (and the one test of an item the archive skips before its info is read)
           tests="tests/test_engine_commands.py tests/test_run_owner.py tests/test_store_before_announce.py tests/test_file_removal.py tests/test_file_removal_many.py tests/test_engine.py tests/test_engine_disk_refusals.py tests/test_engine_stops.py tests/test_engine_hostile.py tests/test_stalls.py tests/test_shaping.py::test_archived_url_is_skipped_without_extraction_until_removed tests/test_redteam_deletes17_running.py tests/test_redteam_deletes17_shared.py tests/test_redteam_deletes17_sidecars.py tests/test_api_history.py::test_delete_by_ids_and_by_status tests/test_api_history.py::test_delete_removes_file_only_when_allowed tests/test_flasharr.py::test_pause_resume_and_delete_a_running_download tests/test_mutation18_deletes.py" ;;
  # The file browser's actions (delete, move, rename, zips) and the paths they are confined to.
  files)   mutate="appliance/files/*"
           tests="tests/test_file_removal.py tests/test_files_browser.py tests/test_file_actions.py tests/test_file_actions_hostile.py tests/test_files_download.py tests/test_files_media.py tests/test_files_names.py tests/test_files_overflow.py tests/test_files_swaps.py tests/test_file_tickets.py tests/test_containment.py tests/test_files_latin1.py" ;;
  # Subscriptions: timers, runs, handlers, definitions, retention (which deletes files).
  tasks)   mutate="appliance/tasks/*"
           tests="tests/test_tasks.py tests/test_tasks_hostile.py tests/test_tasks_truth.py tests/test_task_readers.py tests/test_task_addresses.py tests/test_task_scheduler.py tests/test_task_definitions_hostile.py tests/test_tasks_e2e.py tests/test_tasks_years.py tests/test_tasks_late_marks.py tests/test_tasks_beside_people.py" ;;
  # The HLS player: probes, playlists, segments and subtitles via ffmpeg, the ffmpeg slots.
  player)  mutate="appliance/player/*"
           tests="tests/test_player.py tests/test_player_hostile.py tests/test_player_cuts.py tests/test_player_probe_bounds.py tests/test_player_versions.py tests/test_player_subtitles.py tests/test_player_names.py tests/test_player_breaks.py tests/test_file_tickets.py::test_a_ticket_carries_on_through_the_playlists_in_process" ;;
  # The history's store: items, filters, search, pagination, backups, the tasks' records.
  store)   mutate="appliance/store/*"
           tests="tests/test_store.py tests/test_history_search.py tests/test_api_history.py tests/test_filters.py tests/test_database_backup.py tests/test_store_before_announce.py tests/test_write_failures.py tests/test_pagination_cors.py tests/test_store_records.py tests/test_file_removal.py tests/test_schema_upgrades.py tests/test_store_damage.py tests/test_history_walk.py tests/test_tasks_beside_people.py tests/test_store_stop.py" ;;
  # Notifications: targets, batching, Apprise and webhook senders (and where they may connect).
  notify)  mutate="appliance/notify/*"
           tests="tests/test_notify.py tests/test_notify_hostile.py tests/test_notify_delivery.py tests/test_notify_secrets.py tests/test_notify_messages.py tests/test_notify_apprise.py tests/test_notify_lanes.py tests/test_notify_targets.py tests/test_notify_addresses.py" ;;
  # The websocket sidecar: handshake and its auth, frames, limits, delivery to clients.
  ws)      mutate="appliance/ws/*"
           tests="tests/ws tests/test_flasharr_ws.py" ;;
  # What stands between hostile input and the service at its edges: a request's framing and
  # JSON body, a person's regular expression, which folder may hold downloads and whether its
  # disk is there or full (and what a move into it needs), a name cut to the file system's
  # limits.
  edge)    mutate="appliance/http_framing.py appliance/json_input.py appliance/patterns.py appliance/download_folder.py appliance/mount_table.py appliance/path_limits.py appliance/engine/folder_disk.py appliance/engine/disk_room.py appliance/engine/move_check.py"
           tests="tests/test_http_framing.py tests/test_framing_refusals.py tests/test_bad_input.py tests/test_patterns.py tests/test_config.py tests/test_write_failures.py tests/test_first_start_disk.py tests/test_download_folder.py tests/test_containment.py tests/test_files_names.py tests/test_link_chains.py tests/test_disk_room.py tests/test_move_check.py tests/test_name_bytes.py" ;;
  # The service's other edges: the HTTP worker's poller (in process: test_http_worker.py), a
  # response's pacing, the per-address cap, configured headers, the settings and the logs,
  # and the wire client the TUI and Home Assistant use.
  edge2)   mutate="appliance/http_worker.py appliance/http_refusals.py appliance/http_pacing.py appliance/peers.py appliance/http_headers.py appliance/config.py appliance/setting_fields.py appliance/logs.py appliance/client/*"
           tests="tests/test_http_worker.py tests/test_http_pacing.py tests/test_config.py tests/test_settings_holder.py tests/test_download_folder.py tests/test_logs.py tests/test_tui_client.py tests/test_client_calls.py tests/test_live_feed.py tests/test_tui_hostile.py tests/ws/test_admission.py tests/test_notify_hostile.py tests/test_task_definitions_hostile.py" ;;
  # The API's configuration side: tasks and their runs, definitions, presets, conditions,
  # notification targets, archives, system and yt-dlp endpoints, the terminal, logs and their
  # event streams; the tests that call them through falcon's in-process client.
  api-config)
           mutate="appliance/api/tasks.py appliance/api/executions.py appliance/api/task_definitions.py appliance/api/presets.py appliance/api/conditions.py appliance/api/notifications.py appliance/api/archive.py appliance/api/admin.py appliance/api/system.py appliance/api/ytdlp.py appliance/api/ytdlp_updates.py appliance/api/console.py appliance/api/command.py appliance/api/logs.py appliance/api/sse.py"
           tests="tests/test_api_config.py tests/test_api_streams.py tests/test_system_endpoints.py tests/test_logs.py tests/test_bad_input.py tests/test_task_definitions_hostile.py tests/test_tasks.py tests/test_tasks_hostile.py tests/test_notify.py tests/test_notify_hostile.py tests/test_notify_secrets.py tests/test_ytdlp_update.py tests/test_wire.py tests/test_api_history.py tests/test_shaping.py tests/test_archive_store.py" ;;
  # The rest of the engine: where a download may write (containment), which extractor takes
  # a URL, the condition language, presets and conditions, download archives, what a request
  # and its preset make of a job, the download process's job runner (in this process), and
  # the signs of work that tell a stalled download from a slow one (work_signs), and the
  # programs a download may start (programs).
  engine-rest) mutate="appliance/engine/containment.py appliance/engine/url_matching.py appliance/engine/filters.py appliance/engine/presets.py appliance/engine/conditions.py appliance/engine/archive.py appliance/engine/archiving.py appliance/engine/dl_fields.py appliance/engine/requests.py appliance/engine/plans.py appliance/engine/states.py appliance/engine/storing.py appliance/engine/records.py appliance/engine/jobs.py appliance/engine/ytdlp_tuning.py appliance/engine/option_table.py appliance/engine/child.py appliance/engine/filter_bound.py appliance/engine/work_signs.py appliance/engine/programs.py"
           tests="tests/test_containment.py tests/test_url_matching.py tests/test_filters.py tests/test_shaping.py tests/test_archive_store.py tests/test_engine_hostile.py tests/test_option_table.py tests/test_patterns.py tests/test_child.py tests/test_settings_holder.py tests/test_bad_input.py tests/test_write_failures.py tests/test_archive_files.py tests/test_api_history.py::test_url_info_cache tests/test_engine.py::test_a_download_waits_for_the_disk_only_where_a_person_asked tests/test_stalls.py tests/test_option_smuggling.py tests/test_metadata_paths.py tests/test_work_signs.py tests/test_records_answers.py tests/test_child_tuning.py tests/test_redteam_programs.py" ;;
  # The queue in memory: its orders (pages, anchors, the newest), its kept counts (engine
  # stats, a status's total, Flasharr's batch summaries) and the reads that answer from them.
  queue)   mutate="appliance/engine/queue_order.py appliance/engine/queue_reads.py appliance/engine/queue_tally.py"
           tests="tests/test_queue_order.py tests/test_queue_tally.py tests/test_queue_reads.py tests/test_queue_reads_races.py tests/test_queue_tally_engine.py tests/test_queue_view.py tests/test_queue_counts_server.py tests/test_engine_disk_refusals.py tests/test_flasharr.py::test_batch_pause_resume_and_partial_counts tests/test_mutation18_queue.py" ;;
  # The API's item side and its plumbing: history, Flasharr's view and settings, files, downloads, player
  # and image routes, and what every request passes (middleware, errors, bodies, pagination,
  # CORS, the auth routes); only the tests that drive them through falcon's TestClient.
  api-items) mutate="appliance/api/downloads.py appliance/api/history.py appliance/api/files.py appliance/api/local_files.py appliance/api/player.py appliance/api/images.py appliance/api/records.py appliance/api/dl_fields.py appliance/api/requests.py appliance/api/schemas.py appliance/api/pagination.py appliance/api/middleware.py appliance/api/errors.py appliance/api/conditional.py appliance/api/cors.py appliance/api/auth.py appliance/api/flasharr.py appliance/api/flasharr_settings.py appliance/api/flasharr_queue.py appliance/api/app.py appliance/api/openapi.py appliance/api/docs_files.py appliance/flasharr.py appliance/slots.py appliance/api/queue_view.py"
           tests="tests/test_api_history.py tests/test_bad_input.py tests/test_pagination_cors.py tests/test_flasharr.py tests/test_flasharr_settings.py tests/test_openapi.py tests/test_cross_site.py tests/test_files_browser.py tests/test_files_download.py tests/test_files_names.py tests/test_file_tickets.py tests/test_history_search.py tests/test_files_media.py tests/test_player_hostile.py tests/test_player_cuts.py tests/test_player_versions.py tests/test_player_subtitles.py tests/test_player_names.py tests/test_settings_holder.py tests/test_wire.py tests/test_slots.py tests/test_queue_view.py tests/test_history_walk.py tests/test_mutation18_settings.py" ;;
  # The terminal UI and the command line: Textual's pilot and the commands' main() run in
  # the test process (the CLI's subprocess tests judge nothing), against the real service and
  # against a hostile one (tests/test_tui_hostile.py, test_tui_forms.py).
  tui)     mutate="appliance/tui/*.py appliance/tui/views/*.py appliance/tui/screens/*.py appliance/cli.py"
           tests="tests/test_tui_hostile.py tests/test_tui_hostile_answers.py tests/test_tui_bounds.py tests/test_tui_forms.py tests/test_tui_client.py tests/test_tui_snapshots.py tests/test_tui_views.py tests/test_tui.py tests/test_tui_layout_text.py tests/test_tui_moves.py tests/test_cli_local.py tests/test_tui_years.py tests/test_tui_days.py tests/test_tui_reconnect_pages.py tests/test_tui_pastes.py tests/test_tui_races.py tests/test_tui_names.py tests/test_tui_credentials.py tests/test_tui_big_answers.py tests/test_tui_keys.py"
           # These two fail under mutmut's trampolines only (its stats run then stops the
           # whole target): the flood's memory bound (4.6 MB grown for its 4 MiB) and the
           # restart's 90 s wait. Both pass in the suite.
           deselect="tests/test_tui_bounds.py::test_a_flood_of_new_queue_ids_keeps_the_newest_and_the_memory_flat tests/test_tui.py::test_reconnects_after_a_restart_and_misses_nothing" ;;
  # The system's edges: updating yt-dlp from a package index (its pages, the wheels kept for a
  # roll back, the install and its check), the systemd unit it installs, the notify protocol
  # and the journal, the zeroconf announcement.
  system)  mutate="appliance/ytdlp_update/* appliance/service_install.py appliance/systemd.py appliance/discovery.py"
           tests="tests/test_ytdlp_update.py tests/test_ytdlp_update_hostile.py tests/test_ytdlp_update_interrupted.py tests/test_ytdlp_update_redirects.py tests/test_service_install.py tests/test_systemd.py tests/test_systemd_protocol.py tests/test_discovery.py" ;;
  # The core modules beneath the rooms: where the service's own requests may connect (the
  # SSRF guard), atomic writes, the instance's lock and id, the event bus, the error type,
  # file kinds, units, XML text, the heap and CPU shares, the files in use, and the engine's
  # small modules (NFO files, a URL's info cache, failures said plainly, yt-dlp's number
  # readers); the secrets of a URL masked in logs and files (url_secrets.py) and a person's
  # credentials kept out of an info and of what leaves the box (engine/credentials.py); a
  # site's error status and a failed connection said plainly; the wall clock's steps.
  core)    mutate="appliance/url_secrets.py appliance/engine/credentials.py appliance/http_statuses.py appliance/connection_failures.py appliance/clock_steps.py appliance/outbound.py appliance/ip_addresses.py appliance/host_names.py appliance/atomic.py appliance/instance.py appliance/events.py appliance/errors.py appliance/kinds.py appliance/units.py appliance/xml_text.py appliance/heap.py appliance/cpu_share.py appliance/recent.py appliance/engine/nfo.py appliance/engine/info.py appliance/engine/contained_cli.py appliance/engine/failures.py appliance/engine/ytdlp_numbers.py appliance/in_use.py"
           tests="tests/test_redteam_secrets.py tests/test_notify_secrets.py tests/test_info_credentials.py tests/test_mutation18_secrets.py tests/test_clock_steps.py tests/test_plain_connections.py tests/test_plain_failures.py tests/test_mutation18_words.py tests/test_outbound.py tests/test_instance.py tests/test_atomic.py tests/test_events.py tests/test_values.py tests/test_nfo.py tests/test_url_info.py tests/test_notify_addresses.py tests/test_task_addresses.py tests/test_host_names.py tests/test_notify_messages.py tests/test_failures.py tests/test_heap.py tests/test_cpu_share.py tests/test_filters.py tests/test_engine_hostile.py tests/test_shaping.py::test_nfo_files tests/test_store.py tests/test_files_media.py tests/test_files_browser.py tests/test_bad_input.py tests/test_logs.py tests/test_discovery.py::test_instance_id_is_kept_across_restarts tests/test_api_history.py::test_url_info_cache tests/test_api_config.py::test_url_info_reads_with_the_options_given tests/test_tasks_beside_people.py tests/test_guessing.py::test_password_checks_are_bounded_cached_and_never_queued tests/test_auth_rules.py::test_the_checker_caches_successes_only_for_a_while tests/test_auth_rules.py::test_the_checker_remembers_at_most_limit tests/test_player_subtitles.py" ;;
  # The download processes: the pool (its keeper, acquire/release/discard), a process's
  # messages and its end, the zygote and the launcher that forks from it, the service's
  # runtime and its gunicorn configuration, the bytecode cache. The pool runs in the test
  # process; the zygote's loop runs in a process of its own, and in the test process for
  # test_zygote_loop.py (its forks aside: what they run is never judged).
  procs)   mutate="appliance/engine/workers.py appliance/engine/launcher.py appliance/engine/zygote.py appliance/engine/download_process.py appliance/runtime.py appliance/server.py appliance/bytecode.py"
           # (test_bytecode.py's first two start the service and an interpreter as processes; in
           # the scratch copy the service would not run from the venv's cache)
           tests="tests/test_pool.py tests/test_zygote.py tests/test_bytecode.py::test_serve_is_run_again_optimized_once tests/test_bytecode.py::test_the_processes_it_starts_run_as_it_runs tests/test_bytecode.py::test_a_cache_others_may_write_is_not_used tests/test_bytecode.py::test_no_cache_outside_a_venv_or_where_none_was_made tests/test_bytecode.py::test_every_ytdlp_module_is_compiled_into_the_cache tests/test_bytecode.py::test_a_compile_that_fails_is_said_by_its_last_line tests/test_bytecode.py::test_a_compile_that_cannot_run_is_said tests/test_bytecode.py::test_a_cache_that_cannot_be_made_is_said tests/test_process_groups.py tests/test_worker_messages.py tests/test_slow_starts.py tests/test_startup.py tests/test_startup_disks.py tests/test_slots.py tests/test_engine.py::test_dead_download_process_is_an_error_not_a_hang tests/test_engine.py::test_spawned_pool_keeps_a_spare_replaces_killed_and_retires_idle tests/test_engine.py::test_stuck_download_is_stopped_and_marked tests/test_engine_commands.py tests/test_engine_stops.py tests/test_zygote_loop.py tests/test_process_limits.py tests/test_command_storm.py tests/test_file_removal.py::test_items_follow_their_files_renamed_and_moved_in_the_browser tests/test_file_removal.py::test_items_of_files_deleted_in_the_browser_name_no_file tests/test_file_removal.py::test_a_folder_of_many_items_is_announced_as_one_message" ;;
  # The Home Assistant integration (homeassistant/custom_components/appliance): its own tests,
  # in Home Assistant's test harness on .venv-ha's Python 3.13 (./bootstrap.sh test makes
  # it), against a real appliance run from .venv and a hostile one in the test process.
  homeassistant)
           mutate="custom_components/appliance/*"
           tests="tests" ;;
  *) echo "unknown target: $target" >&2; exit 2 ;;
esac
mutate="${MUTATION_MUTATE:-$mutate}"
tests="${MUTATION_TESTS:-$tests}"
mutmut="$here/.venv/bin/mutmut"
if [ "$target" = homeassistant ]; then
  py="$here/.venv-ha/bin/python"
  mutmut="$here/.venv-ha/bin/mutmut"
  [ -x "$py" ] || { echo "no $py: run ./bootstrap.sh test first" >&2; exit 2; }
  # The appliance the tests start (conftest.py), from the main environment.
  export APPLIANCE_PYTHON="$here/.venv/bin/python"
fi

"$py" -c "import mutmut" 2>/dev/null || "$py" -m pip install -q "mutmut>=3.8,<3.9"  # mutmut_run.py patches 3.8

scratch="${MUTATION_DIR:-$(mktemp -d /tmp/mutation-"$target".XXXX)}"
mkdir -p "$scratch"
if [ "$target" = homeassistant ]; then
  # The integration's folder is the scratch root; its conftest.py finds the main suite's
  # tests/support (the appliance's server harness) in the tests folder's parent's tests/.
  cp -rL "$here/homeassistant/custom_components" "$here/homeassistant/tests" \
    "$here/homeassistant/scripts" "$here/homeassistant/pytest.ini" "$scratch/"
  cp -rL "$here/tests/support" "$scratch/tests/"
  source_paths=custom_components
  also_copy="scripts pytest.ini"
  pytest_args="-p no:randomly -p no:cacheprovider"
else
  cp -rL "$here/appliance" "$here/tests" "$here/pyproject.toml" "$here/README.md" "$here/docs" \
    "$here/systemd" "$scratch/"
  source_paths=appliance
  # the documents some tests compare the service's answers with; the unit the install writes
  also_copy="README.md docs systemd"
  pytest_args="-n0 -p no:cacheprovider"  # xdist stays loaded: some modules group tests for it
  for test in ${deselect:-}; do pytest_args+=" --deselect $test"; done
fi
{  # lists: one value a line
  echo "[mutmut]"
  echo "source_paths = $source_paths"
  echo "timeout_multiplier = ${MUTATION_TIMEOUT_MULTIPLIER:-15}"
  echo "also_copy ="
  printf '    %s\n' $also_copy
  echo "only_mutate ="
  for path in $mutate; do echo "    $path"; done
  echo "pytest_add_cli_args_test_selection ="
  for test in $tests; do echo "    $test"; done
  echo "pytest_add_cli_args ="
  printf '    %s\n' $pytest_args
} > "$scratch/setup.cfg"
cd "$scratch"
names=()
if [ "$target" = engine ]; then
  names+=("appliance.engine.runs.*" "appliance.engine.file_removal.*" "appliance.engine.deleting.*")
  while read -r module class method; do
    [[ -z "$module" || "$module" == \#* ]] && continue
    names+=("appliance.engine.${module}.xǁ${class}ǁ${method}__mutmut_*")
  done < "$here/bench/mutation_engine.txt"
fi
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  # Every Nth mutant only (a figure within the time at hand): generate them all first, then
  # pick by name. Generated the way `mutmut run` starts (its own steps, mutmut 3.8): a run
  # filtered on a name that matches nothing would also run the whole test list twice.
  "$py" - <<'PY'
import os
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
os.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
create_mutants(os.cpu_count() or 2)
PY
  mapfile -t all < <("$mutmut" results --all true | sed -nE 's/^ *([^ ]+): .*/\1/p')
  selected=()
  for full in "${all[@]}"; do
    if [ ${#names[@]} -gt 0 ]; then
      matched=""
      for pattern in "${names[@]}"; do [[ "$full" == $pattern ]] && matched=1; done
      [ -n "$matched" ] || continue
    fi
    selected+=("$full")
  done
  names=()
  for i in "${!selected[@]}"; do
    if (( i % MUTATION_SAMPLE == 0 )); then names+=("${selected[$i]}"); fi
  done
  echo "sample: ${#names[@]} of ${#selected[@]} mutants" >&2
fi
"$py" "$here/bench/mutmut_run.py" run --max-children "${MUTATION_JOBS:-2}" "${names[@]}" || true
"$mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$py" - "$scratch" <<'PY'
import json, pathlib, sys
stats = pathlib.Path(sys.argv[1], "mutants", "mutmut-cicd-stats.json")
if stats.exists():
    s = json.loads(stats.read_text())
    judged = s["killed"] + s["survived"] + s.get("timeout", 0)
    share = 100 * (s["killed"] + s.get("timeout", 0)) / judged if judged else 0
    print(f"killed {s['killed']} + timeout {s.get('timeout', 0)} of {judged} judged "
          f"({share:.1f} %); no tests {s.get('no_tests', 0)}, survived {s['survived']}")
PY
echo "scratch folder: $scratch"
}

main "$@"; exit
