"""The parts of the ``userplane-async`` command; ``userplane_async.cli.main`` runs it.

``_options`` builds the parser, ``_output`` writes text, tables and JSON lines, ``_reading``
holds the commands that read or change API objects, ``_reporting`` (lines) and ``_bars``
(a terminal's progress bars) show archive runs, and ``_jobs`` the commands that save files
(archive, download, verify, demo) or serve the fake.
"""
