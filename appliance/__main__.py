"""``python -m appliance`` and the ``appliance`` command.

``appliance serve`` runs itself again optimized (``appliance.bytecode``) before it imports
anything else: the command line's module and what it imports were 0.19 s of CPU here (more
than a second on a Pi) that the first interpreter spent at each start only to be replaced."""

import os
import sys

from . import bytecode

SERVICE_COMMANDS = ("serve", "daemon")


def main() -> int:
    if sys.argv[1:2] and sys.argv[1] in SERVICE_COMMANDS:
        optimized = bytecode.reexec_command(sys.argv[1:])
        if optimized is not None:  # the same process (systemd's main pid), optimized
            os.execv(optimized[0], optimized)
    from .cli import main as command

    return command()


if __name__ == "__main__":
    sys.exit(main())
