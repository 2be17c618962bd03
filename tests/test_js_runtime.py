"""yt-dlp's JavaScript runtime: deno from the virtual environment (the install brings it),
named to yt-dlp by the service in every job, reported in /api/system/configuration, and never
chosen by a request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import falcon.testing

from appliance.engine.child import _params
from appliance.engine.js_runtime import js_runtime
from appliance.engine.ytdlp_tuning import YoutubeDL
from appliance.runtime import Runtime
from appliance.store import Item


def test_configuration_names_the_runtime_in_use(client: falcon.testing.TestClient) -> None:
    reported = client.simulate_get("/api/system/configuration").json["js_runtime"]
    deno = Path(sys.executable).parent / "deno"
    out = subprocess.run([str(deno), "--version"], capture_output=True, text=True, check=True)
    assert reported["name"] == "deno" and reported["path"] == str(deno)
    assert out.stdout.startswith(f"deno {reported['version']} ")
    assert reported["solver"]  # yt-dlp-ejs, the challenge solver scripts


def test_every_job_names_it_to_yt_dlp(runtime: Runtime) -> None:
    item = Item(id="js", url="https://www.youtube.com/watch?v=BaW_jenozKc", preset="default")
    job = runtime.engine._job_command("download", item)
    runtime_info = js_runtime()
    assert runtime_info is not None
    assert job["js_runtimes"] == {"deno": {"path": runtime_info["path"]}}
    params = _params(job, None, None)  # type: ignore[arg-type]
    with YoutubeDL({"js_runtimes": params["js_runtimes"], "quiet": True}) as ydl:
        found = ydl._js_runtimes["deno"].info
    assert found is not None and found.supported and found.path == runtime_info["path"]


def test_a_request_cannot_choose_one(client: falcon.testing.TestClient) -> None:
    for cli in ("--js-runtimes node", "--js-runtimes deno:/tmp/other-deno --no-playlist"):
        response = client.simulate_post("/api/history", json={
            "url": "http://127.0.0.1:9/v.mp4", "cli": cli, "auto_start": False})
        assert response.status_code == 200, response.text
        [added] = response.json
        assert added["removed_options"] == ["--js-runtimes"]
        stored = client.simulate_get(f"/api/history/{added['id']}").json
        assert "js-runtimes" not in stored["cli"]
