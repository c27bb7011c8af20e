"""`nrm bench`: what the bus costs per event, always next to a baseline from the same run.

One module per stage (crypto floor, store append, transport baseline, end to end, growth,
audit) returns plain dicts; `runner` sequences them and `report` prints the table and
writes JSON and an SVG chart. Absolute times drift on shared machines, so every figure
that matters is also given as a ratio to a baseline measured minutes apart, not days.
"""
