"""Profile every thread: moto's Step Functions engine runs each execution, and each
task of it, in threads of its own, which pyinstrument and a plain cProfile (one
thread) do not see. ``ThreadProfiler`` starts a cProfile.Profile with a per-thread
CPU clock (time.thread_time, so threads waiting on a join are not charged) in this
thread and in every thread started while it is active, then merges them.

``layers()`` splits the CPU time into what is ours and what is the embedded engine's,
from inclusive (cumulative) times of the functions where one layer calls the next:

* moto DynamoDB backend: DynamoHandler.call_action (through our serialising lock);
* boto3/botocore client: the handlers' client calls minus the backend under them;
* our code: the saga handlers (steps.run / run_bookkeeping) minus their client calls;
* moto Step Functions engine: all CPU of the engine's threads (definition evaluation,
  JSONPath, the event history, task threads, Lambda dispatch) minus the handlers.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from typing import Any

Key = tuple[str, int, str]


class ThreadProfiler:
    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _new_profile(self) -> cProfile.Profile:
        profile = cProfile.Profile(time.thread_time)
        with self._lock:
            self.profiles.append(profile)
        return profile

    def _thread_hook(self, *_: Any) -> None:
        sys.setprofile(None)
        self._new_profile().enable()

    def __enter__(self) -> ThreadProfiler:
        threading.setprofile(self._thread_hook)
        self._main = self._new_profile()
        self._main.enable()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._main.disable()
        threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            profile.create_stats()
            if getattr(profile, "stats", None):
                stats.add(profile)
        return stats

    @staticmethod
    def _cumulative(stats: pstats.Stats, file_part: str, function: str) -> float:
        raw = _raw(stats)
        return sum(entry[3] for (filename, _, name), entry in raw.items()
                   if name == function and file_part in filename)

    @staticmethod
    def _total(profile: cProfile.Profile) -> float:
        profile.create_stats()
        raw: dict[Key, Any] = getattr(profile, "stats", {})
        return sum(entry[2] for entry in raw.values())

    def layers(self) -> dict[str, Any]:
        """CPU split into layers; the caller must not create AWS calls of its own inside
        the profiled region other than starting executions (run setup outside)."""
        stats = self.stats()
        main_cpu = self._total(self.profiles[0])
        total = sum(self._total(profile) for profile in self.profiles)
        backend = self._cumulative(stats, "/local/hooks.py", "_serialised_call_action")
        handlers = (self._cumulative(stats, "chalicelib/steps.py", "run")
                    + self._cumulative(stats, "chalicelib/steps.py", "run_bookkeeping"))
        invoke = self._cumulative(stats, "/local/hooks.py", "_invoke_in_process")
        handler_client = self._handler_client_time(stats)
        if invoke:  # through the state machine: handlers run in the engine's threads
            layers = {
                "moto DynamoDB backend (embedded AWS)": backend,
                "boto3/botocore client of the handlers' DynamoDB calls": handler_client - backend,
                "our code (handlers, chalicelib, logging; excl. their AWS calls)": invoke - handler_client,
                "moto Step Functions engine + Lambda dispatch (embedded AWS)": total - main_cpu - invoke,
                "StartExecution call and the benchmark's own thread": main_cpu,
            }
        else:  # handlers called directly in this thread
            layers = {
                "moto DynamoDB backend (embedded AWS)": backend,
                "boto3/botocore client of the handlers' DynamoDB calls": handler_client - backend,
                "our code (handlers, chalicelib, logging; excl. their AWS calls)": handlers - handler_client,
                "the benchmark's own code (JSON copies of the event)": total - handlers,
            }
        return {
            "cpu_s": round(total, 3),
            "threads": len(self.profiles),
            "layers": {name: {"cpu_s": round(value, 3), "pct": round(100 * value / total, 1) if total else 0.0}
                       for name, value in layers.items()},
        }

    @staticmethod
    def _handler_client_time(stats: pstats.Stats) -> float:
        """Client time (backend included) of the handlers' AWS calls: every one goes
        through chalicelib.db, by a boto3 Table resource or the client directly."""
        raw = _raw(stats)
        total = 0.0
        for (filename, _, name), entry in raw.items():
            if "botocore/client.py" in filename and name == "_api_call":
                callers = entry[4]
                total += sum(value[3] for (caller_file, _, _), value in callers.items()
                             if "boto3/resources" in caller_file or "chalicelib/db.py" in caller_file)
        return total

    def hotspots(self) -> dict[str, float]:
        """Inclusive CPU seconds of the embedded engine's functions that dominate."""
        stats = self.stats()
        raw = _raw(stats)
        spots = {
            "moto transact_write_items (whole-table deepcopy as rollback copy)":
                self._cumulative(stats, "moto/dynamodb/models/__init__.py", "transact_write_items"),
            "moto Table.query (one partition, via local.hooks)":
                self._cumulative(stats, "moto/dynamodb/models/table.py", "query"),
            "moto update_item": self._cumulative(stats, "moto/dynamodb/models/__init__.py", "update_item"),
            "moto get_item": self._cumulative(stats, "moto/dynamodb/models/__init__.py", "get_item"),
            "copy.deepcopy (all callers)": self._cumulative(stats, "copy.py", "deepcopy"),
            "antlr4 (moto's ASL/JSONPath parser), own time":
                sum(entry[2] for (filename, _, _), entry in raw.items() if "/antlr4/" in filename),
        }
        return {name: round(value, 3) for name, value in spots.items()}

    def top(self, count: int = 15, sort: str = "tottime") -> list[dict[str, Any]]:
        stats = self.stats()
        raw = _raw(stats)
        index = 2 if sort == "tottime" else 3
        rows = sorted(raw.items(), key=lambda kv: kv[1][index], reverse=True)[:count]
        return [{"function": f"{_short(filename)}:{line}({name})", "calls": entry[1],
                 "tottime_s": round(entry[2], 3), "cumtime_s": round(entry[3], 3)}
                for (filename, line, name), entry in rows]


def _raw(stats: pstats.Stats) -> dict[Key, Any]:
    """The table behind print_stats: (file, line, function) -> (calls, primitive calls,
    own time, cumulative time, callers)."""
    # typeshed leaves Stats.stats out: pstats fills it in and print_stats reads it.
    return stats.stats  # type: ignore[attr-defined]


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
