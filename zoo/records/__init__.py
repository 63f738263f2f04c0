"""Records of measurements: the typed :class:`Result`, its one writer (:func:`append`,
:func:`append_bench`) and its one reader (:func:`scan`, :func:`scan_bench`, :func:`read_results`)."""

from zoo.records.query import canonical_model, read_results
from zoo.records.result import SCHEMA, Result, protocol_key
from zoo.records.results import ResultsError, ResultsWriteError, results_path, skipped_note
from zoo.records.store import append, append_bench, bench_path, from_json, latest_bench, scan, scan_bench

__all__ = ["SCHEMA", "Result", "ResultsError", "ResultsWriteError", "append", "append_bench", "bench_path",
           "canonical_model", "from_json", "latest_bench", "protocol_key", "read_results", "results_path", "scan",
           "scan_bench", "skipped_note"]
