"""The download engine: queue, warm yt-dlp processes, progress, recovery.

Nothing is imported here: a download process imports ``engine.child`` through this package,
and the engine's own modules (``engine.engine``: the ORM, the store, the settings) are memory
it never uses -- in the zygote, memory every process it forks would map.
"""
