"""Flow control owned by the server (protocol section 6).

``admission`` decides what an event does to a function (start a run now or
later, buffer it for a batch or a debounce, or drop it), ``concurrency``
decides which queued calls may be sent, and ``timers`` fires the buffered
batches and debounces when they are due. ``limits`` holds the pure
throttle and rate-limit arithmetic, ``expr`` the CEL key evaluation and
``state`` the SQLite tables they share with the main store.
"""
