"""``agentopt report PATH``: summarise recorded calls or a selection's observations.

PATH is recognised by its content, not its name (see
:mod:`agentopt.report.loading`): call records (JSONL, JSON array, SQLite record
store), a selection's observations (its store, or the CSV of
``results.observations_dataframe()``: the demo's ``observations.csv``), or a
selection's ranking (``results.to_csv()``, ``results.export_config()``).
:mod:`agentopt.report.render` prints the summary. An unpriced cost is shown as
*unpriced*, never as $0; bad input raises :class:`DataError` (or
:class:`ConfigError` for a missing path) naming the file and the line or row.

Example::

    agentopt report .agentopt/records.sqlite
"""

from __future__ import annotations

from agentopt.report.loading import Loaded, load
from agentopt.report.render import CostSum, cli_main, observation_rows, print_report, record_rows

__all__ = [
    "CostSum",
    "Loaded",
    "cli_main",
    "load",
    "observation_rows",
    "print_report",
    "record_rows",
]
