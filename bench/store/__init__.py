"""The run store: where every run lives and how it is found again.

- ``identity``: a run's identity (what makes two runs the same) and the folder it names;
- ``atomic``: every file and folder written whole or not at all (the project's one way of writing);
- ``results``: ``result.json`` of a run folder: read (damaged ones cost one run), written, listed;
- ``digest``: content digests sealing every ``torch.save`` payload, checked on load;
- ``lock``: one process per run folder;
- ``index``: the SQLite index ``runs.sqlite``, derivable from the result files.
"""

from bench.store.identity import safe_name
from bench.store.results import INDEX_FILE, RESULT_FILE, SCHEMA, load_results, write_result

__all__ = ["INDEX_FILE", "RESULT_FILE", "SCHEMA", "load_results", "safe_name", "write_result"]
