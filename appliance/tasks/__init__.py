"""Scheduled tasks: subscriptions to channels, playlists and feeds that run themselves.

Knows the rooms below it only: store, engine, events, config.

Nothing is imported here: a download process imports ``tasks.isolated`` to read a feed,
without the service (``tasks.service``), the store and the scheduler.
"""
