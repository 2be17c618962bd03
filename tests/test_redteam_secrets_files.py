"""What another account of the box can read of the service's secrets at rest.

The unit's ``UMask=0027`` and the media folder's group are for the media server's user
(Jellyfin, Samba), which the README tells to join the service's group. The service's
password must not be readable through that group.
"""

from __future__ import annotations

from pathlib import Path

from test_service_install import staging_root

from appliance.service_install import ENV_PATH, Options, plan


def test_an_environment_file_the_group_reads_is_closed_by_the_install(
        tmp_path: Path) -> None:
    """An install wrote /etc/appliance/appliance.env (YTP_AUTH_PASSWORD) at mode 640, group
    appliance, and kept it so when run again: the media server's user read the password."""
    root, venv = staging_root(tmp_path)
    env = root / str(ENV_PATH).lstrip("/")
    env.parent.mkdir(parents=True)
    env.write_text("YTP_AUTH_PASSWORD=hunter22\n")
    env.chmod(0o640)
    options = Options(root=root, venv=venv)
    [closing] = [step for step in plan(options) if str(ENV_PATH) in step.says]
    assert closing.says.startswith(f"close {ENV_PATH} to others than its owner (mode 640 → 600)")
    closing.run()
    assert env.stat().st_mode & 0o777 == 0o600
    assert env.read_text() == "YTP_AUTH_PASSWORD=hunter22\n", "its settings are kept"
    assert not [step for step in plan(options) if str(ENV_PATH) in step.says], \
        "a closed one is left as it is"
