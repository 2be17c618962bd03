"""Background threads stand below the process's main thread in the CPU's queue, by the same
step wherever they were made; the threads that made them keep their place."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from appliance import cpu_share


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)  # Linux: the calling thread's


def test_a_background_pool_thread_stands_below_the_main_thread() -> None:
    main = os.getpriority(os.PRIO_PROCESS, os.getpid())
    below = min(main + cpu_share.BACKGROUND_NICENESS, cpu_share.MAX_NICENESS)
    with ThreadPoolExecutor(1, initializer=cpu_share.lower_this_thread) as pool:
        assert pool.submit(niceness).result() == below
    assert niceness() == main  # the submitting thread is not moved
    assert below > main, "a test run at nice 19 cannot see a thread go lower"


def test_a_pool_thread_made_by_a_background_thread_is_not_pushed_further_down() -> None:
    """A thread inherits its maker's niceness: the step is counted from the main thread."""
    main = os.getpriority(os.PRIO_PROCESS, os.getpid())
    below = min(main + cpu_share.BACKGROUND_NICENESS, cpu_share.MAX_NICENESS)
    seen: list[int] = []

    def from_a_lowered_thread() -> None:
        cpu_share.lower_this_thread()
        with ThreadPoolExecutor(1, initializer=cpu_share.lower_this_thread) as pool:
            seen.append(pool.submit(niceness).result())

    maker = threading.Thread(target=from_a_lowered_thread)
    maker.start()
    maker.join(timeout=30)
    assert seen == [below]
    assert below < cpu_share.MAX_NICENESS, "a test run at nice 9 or more cannot tell"
