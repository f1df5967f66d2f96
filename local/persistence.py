"""What of the embedded stack survives a restart of `chalice local`, and how.

This module owns the state directory (``LOCAL_STATE_DIR``; `make run` passes
``.local-state``) and everything in it:

* ``journal-NNNNNN.jsonl``: a redo log. After every DynamoDB write that succeeded, one
  line holds the after-image of each item it touched (the item as it now is, or null for
  a deletion). The line is written inside hooks.py's DynamoDB lock, before the answer
  goes back to the caller: whatever a caller was told succeeded (a 202, a committed
  step), and whatever any reader could have seen, is in the kernel when the process
  dies, at any instant. Order is the order of application, because writes are
  serialised. A line is one request, so a transaction is all or nothing on disk too.
* ``snapshot.json``: every table's items as of the end of segment ``through``. Start-up
  folds the snapshot and the segments after it (the last image of a key wins, which
  makes folding idempotent), writes the result as the new snapshot and starts a new
  segment. A segment that grows past ``segment_bytes`` is closed and folded into the
  snapshot by a background thread that reads files only, so requests never wait for it.
* ``lock``: held (flock) while a process uses the directory; two servers on one state
  would delete each other's journal.

After-images rather than the requests themselves: replaying requests would re-run every
condition and update expression through moto (about a millisecond each, and a
ten-thousand-booking session is 250,000 of them), and would be right only if moto
evaluated them identically on replay. An image is loaded with one ``Table.put_item``.

What does not survive, and what start-up does about it (``start_with_state``):

* Step Functions executions (moto's engine state is threads): every booking left in
  flight is driven to a terminal state by chalicelib.recovery, as on AWS when a saga is
  gone: PENDING is compensated, CANCELLING finishes its cancellation.
* The Cognito user pool is created anew, with the same ids: moto's documented HASH id
  strategy makes the pool and client ids a function of their names and settings (moto
  signs with one fixed key), and ``install_stable_identities`` makes each user's ``sub``
  a function of the pool's name and the username. Bookings belong to the sub, so FF0001
  still owns its bookings, and a token issued before the restart is still valid after.
  Stable subs rather than a persisted pool: the pool's only local users are the demo
  customers, re-created (with the demo password) on every start; moto's pool objects
  (keys, token maps, internal attributes) would have to be serialised through its
  internals and break across moto versions, and two attributes of one user do not.
* Demo data is seeded once per state (a ``demo_seeded_at`` note in the journal); a
  restart never resets seats that were sold or balances that were spent.

Durability is against the process dying (kill -9, a crash): the kernel keeps what was
written. Against the machine dying (power loss), ``LOCAL_STATE_FSYNC=1`` syncs every
line to the disk, at a cost per write (docs in the README).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import clock, config, recovery
from local.embedded import dynamodb_backend

if TYPE_CHECKING:
    from local.embedded import EmbeddedAws

STATE_DIR_ENV = "LOCAL_STATE_DIR"  # where state lives; unset or empty: in memory only
FRESH_ENV = "LOCAL_STATE_FRESH"  # 1: forget the state first (FRESH=1 make run)
FSYNC_ENV = "LOCAL_STATE_FSYNC"  # 1: fsync every journal line (power loss, not only kill -9)

SNAPSHOT = "snapshot.json"
LOCK = "lock"
_SEGMENT = re.compile(r"journal-(\d{6})\.jsonl")
SNAPSHOT_FORMAT = 1
#: A segment this large is closed and folded into the snapshot in the background.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEMO_SEEDED = "demo_seeded_at"

# The requests that change items, and where each names the items it touches.
_ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
# moto applies a batch's puts one by one: one refused leaves those before it applied, so
# a batch's after-images are journaled whatever the answer (an image is always the truth).
_PARTIAL_ON_ERROR = {"BatchWriteItem"}
# Writes the journal cannot see the targets of; nothing in this project sends them.
_UNJOURNALED = {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}

Tables = dict[str, dict[str, dict[str, Any]]]  # table -> canonical key -> item (DynamoDB JSON)


class StateCorrupt(RuntimeError):
    """A journal line or the snapshot cannot be read: say where, never guess."""


class StateInUse(RuntimeError):
    """Another process holds the state directory."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in config.TRUE_VALUES


def fresh_requested() -> bool:
    return _flag(FRESH_ENV)


def _canonical(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


@dataclass
class Folded:
    """The state a directory holds: items, notes, and the last segment folded in."""

    tables: Tables = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    through: int = 0
    lines: int = 0

    def apply(self, entry: Any) -> None:
        if isinstance(entry, dict):
            self.meta.update(entry.get("meta") or {})
            return
        for table, key, image in entry:
            rows = self.tables.setdefault(table, {})
            if image is None:
                rows.pop(key, None)
            else:
                rows[key] = image
        self.lines += 1

    def items(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass(frozen=True)
class Restored:
    items: int
    journal_lines: int
    seconds: float
    meta: dict[str, Any]


class StateStore:
    """One state directory: restore it into the embedded tables, then journal every write."""

    def __init__(self, directory: Path, *, fsync: bool = False, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.meta: dict[str, Any] = {}
        self.lines_written = 0
        self.bytes_written = 0
        self.cpu_seconds = 0.0
        self._fd: int | None = None
        self._segment = 0
        self._segment_size = 0
        self._lock = threading.Lock()  # the journal's file (notes come from outside the DynamoDB lock)
        self._compactor: threading.Thread | None = None
        self._lock_file: Any = None
        self._warned: set[str] = set()

    @classmethod
    def from_environment(cls) -> StateStore | None:
        directory = os.environ.get(STATE_DIR_ENV, "").strip()
        return cls(Path(directory), fsync=_flag(FSYNC_ENV)) if directory else None

    # --- the directory -------------------------------------------------------------------
    def acquire(self) -> None:
        """Create the directory and hold its lock for this process's life (released by the
        kernel whatever way the process ends)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.directory / LOCK).open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            self._lock_file = None
            raise StateInUse(f"{self.directory} is in use by pid {holder}: stop that server, or give this one "
                             f"another {STATE_DIR_ENV}") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def wipe(self) -> None:
        """Forget the state: only the files this module writes (the directory may be anything)."""
        for path in self.directory.glob("*"):
            if path.name in (SNAPSHOT, f"{SNAPSHOT}.tmp") or _SEGMENT.fullmatch(path.name):
                path.unlink()

    def _segments(self) -> list[tuple[int, Path]]:
        found = [(int(match.group(1)), path) for path in self.directory.glob("journal-*.jsonl")
                 if (match := _SEGMENT.fullmatch(path.name))]
        return sorted(found)

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"journal-{number:06d}.jsonl"

    # --- reading ---------------------------------------------------------------------------
    def load(self, *, through: int | None = None) -> Folded:
        """The snapshot with every later segment (up to ``through``) folded in."""
        folded = Folded()
        snapshot = self.directory / SNAPSHOT
        if snapshot.exists():
            try:
                saved = json.loads(snapshot.read_bytes())
            except ValueError as exc:
                raise StateCorrupt(f"{snapshot} is not JSON ({exc}): move it away, or start fresh "
                                   "(make reset)") from None
            if saved.get("format") != SNAPSHOT_FORMAT:
                raise StateCorrupt(f"{snapshot} has format {saved.get('format')}, this code reads {SNAPSHOT_FORMAT}")
            folded.tables, folded.meta, folded.through = saved["tables"], saved["meta"], saved["through"]
        for number, path in self._segments():
            if number <= folded.through or (through is not None and number > through):
                continue
            self._fold_segment(folded, path)
            folded.through = number
        return folded

    def _fold_segment(self, folded: Folded, path: Path) -> None:
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.endswith(b"\n"):
                    # Cut off by the end of the machine, not of the process (one write()
                    # per line): never acknowledged, since the answer waits for the write.
                    self._warn(f"{path.name}:{number}: an incomplete last line, ignored")
                    break
                try:
                    entry = json.loads(raw)
                except ValueError as exc:
                    raise StateCorrupt(f"{path}:{number} is not JSON ({exc})") from None
                folded.apply(entry)

    # --- writing the snapshot --------------------------------------------------------------
    def _write_snapshot(self, folded: Folded) -> None:
        final = self.directory / SNAPSHOT
        temporary = self.directory / f"{SNAPSHOT}.tmp"
        body = {"format": SNAPSHOT_FORMAT, "through": folded.through, "meta": folded.meta,
                "tables": folded.tables}
        with temporary.open("w") as out:
            json.dump(body, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        self._sync_directory()

    def _sync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _drop_segments(self, through: int) -> None:
        for number, path in self._segments():
            if number <= through:
                path.unlink()

    def compact(self) -> Folded:
        """Fold everything closed into the snapshot and drop those segments (start-up,
        before any segment is open)."""
        folded = self.load()
        if self._segments():
            self._write_snapshot(folded)
            self._drop_segments(folded.through)
        return folded

    def _compact_in_background(self, through: int) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return  # the next rotation folds this segment too

        def fold() -> None:
            try:
                folded = self.load(through=through)
                self._write_snapshot(folded)
                self._drop_segments(folded.through)
            except Exception as exc:  # the segments stay; the next start folds them
                self._warn(f"compaction failed: {type(exc).__name__}: {exc}")

        self._compactor = threading.Thread(target=fold, name="state-compactor", daemon=True)
        self._compactor.start()

    def wait_for_compaction(self, timeout: float = 60.0) -> None:
        if self._compactor is not None:
            self._compactor.join(timeout)

    # --- restoring ---------------------------------------------------------------------------
    def restore(self, backend: Any) -> Restored:
        """Load the state into moto's DynamoDB ``backend`` (its tables already created),
        then open a new segment and journal every write from now on."""
        started = time.perf_counter()
        folded = self.compact()
        loaded = 0
        with _item_sizes_unchecked():
            for table_name, rows in folded.tables.items():
                table = backend.tables.get(table_name)
                if table is None:
                    self._warn(f"{len(rows)} items of table {table_name}, which this stage no longer has, "
                               "not loaded")
                    continue
                for image in rows.values():
                    # Straight into the table: no request, so nothing is journaled twice.
                    table.put_item(image, overwrite=True)
                    loaded += 1
        self.meta = dict(folded.meta)
        self._open_segment(folded.through + 1)
        from local import hooks

        hooks.observe_dynamodb(self.observe)
        return Restored(loaded, folded.lines, time.perf_counter() - started, dict(self.meta))

    def _open_segment(self, number: int) -> None:
        self._segment = number
        self._fd = os.open(self._segment_path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segment_size = 0

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self.wait_for_compaction()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # --- journaling --------------------------------------------------------------------------
    def observe(self, handler: Any, response: Any) -> None:
        """hooks.py calls this after every DynamoDB request, inside its lock."""
        action = handler.get_endpoint_name(handler.headers)
        if action not in _ITEM_WRITES:
            if action in _UNJOURNALED:
                self._warn(f"{action} is not journaled: what it writes is lost on a restart")
            return
        refused = response[0] != 200
        if refused and action not in _PARTIAL_ON_ERROR:
            return  # a false condition, a cancelled transaction (rolled back by hooks.py): nothing changed
        started = time.thread_time()  # this thread's CPU only: what journaling costs (bench.persistence)
        backend = handler.dynamodb_backend
        try:
            images = [[table_name, _canonical(key), _image(backend.get_item(table_name, key))]
                      for table_name, key in _touched(action, handler.body, backend)]
        except Exception:
            if not refused:
                raise
            images = []  # a request too malformed to name its items was refused before writing any
        if images:
            self._append(images)
        self.cpu_seconds += time.thread_time() - started

    def note(self, **meta: Any) -> None:
        """Record facts about the state itself (that the demo data is in), in order with
        the writes."""
        self.meta.update(meta)
        self._append({"meta": meta})

    def _append(self, entry: Any) -> None:
        data = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the state journal is closed")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fdatasync(self._fd)
            self.lines_written += 1
            self.bytes_written += len(data)
            self._segment_size += len(data)
            if self._segment_size >= self.segment_bytes:
                os.close(self._fd)
                closed = self._segment
                self._open_segment(closed + 1)
                self._compact_in_background(closed)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            print(f"local state ({self.directory}): {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _item_sizes_unchecked() -> Iterator[None]:
    """moto checks an item's 400 KB limit as each attribute goes in, re-measuring all the
    earlier ones (quadratic in attributes): two thirds of a restore's time. Every item
    restored passed that check when it was first written; skip it while restoring (one
    thread, before anything is served)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    checked = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        LimitedSizeDict.__setitem__ = checked  # type: ignore[method-assign]


def _image(item: Any) -> dict[str, Any] | None:
    return item.to_json()["Attributes"] if item is not None else None


def _key_of(table: Any, item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in (table.hash_key_attr, table.range_key_attr) if name and name in item}


def _touched(action: str, params: dict[str, Any], backend: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, key) of every item a successful write request may have changed."""
    if action == "PutItem":
        yield params["TableName"], _key_of(backend.get_table(params["TableName"]), params["Item"])
    elif action in ("UpdateItem", "DeleteItem"):
        yield params["TableName"], params["Key"]
    elif action == "BatchWriteItem":
        for table_name, requests in params["RequestItems"].items():
            table = backend.get_table(table_name)
            for request in requests:
                if "PutRequest" in request:
                    yield table_name, _key_of(table, request["PutRequest"]["Item"])
                else:
                    yield table_name, request["DeleteRequest"]["Key"]
    elif action == "TransactWriteItems":
        for entry in params["TransactItems"]:
            for kind, operation in entry.items():
                if kind == "Put":
                    yield operation["TableName"], _key_of(backend.get_table(operation["TableName"]), operation["Item"])
                elif kind in ("Update", "Delete"):
                    yield operation["TableName"], operation["Key"]
                # ConditionCheck writes nothing


# --- The embedded user pool's identities ----------------------------------------------------
# Any fixed namespace: a sub is uuid5(namespace, "<pool name>/<username>").
_SUB_NAMESPACE = uuid.UUID("5f0c2d8e-6a53-4c1e-9d8e-2a7f1b7c0e11")
_ID_STRATEGIES = ("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY")
_originals: dict[str, Any] = {}


def stable_sub(pool_name: str, username: str) -> str:
    """The ``sub`` of ``username`` in the embedded pool ``pool_name``, on every start."""
    return str(uuid.uuid5(_SUB_NAMESPACE, f"{pool_name}/{username}"))


def _admin_create_user_with_stable_sub(self: Any, user_pool_id: str, username: str, *args: Any, **kwargs: Any) -> Any:
    user = _originals["admin_create_user"](self, user_pool_id, username, *args, **kwargs)
    sub = stable_sub(self.describe_user_pool(user_pool_id).name, user.username)
    user.id = sub  # what moto's tokens carry as "sub"
    user.update_attributes([{"Name": "sub", "Value": sub}])  # what AdminGetUser shows
    return user


def install_stable_identities() -> None:
    """Before the pool exists: its ids and its users' subs the same on every start."""
    from moto.cognitoidp.models import CognitoIdpBackend

    for name in _ID_STRATEGIES:
        if name not in os.environ:
            _originals.setdefault("unset_env", []).append(name)
            os.environ[name] = "HASH"
    if "admin_create_user" not in _originals:
        _originals["admin_create_user"] = CognitoIdpBackend.admin_create_user
        CognitoIdpBackend.admin_create_user = _admin_create_user_with_stable_sub  # type: ignore[method-assign]


def uninstall_stable_identities() -> None:
    from moto.cognitoidp.models import CognitoIdpBackend

    if "admin_create_user" in _originals:
        CognitoIdpBackend.admin_create_user = _originals.pop("admin_create_user")  # type: ignore[method-assign]
    for name in _originals.pop("unset_env", []):
        os.environ.pop(name, None)


# --- Start-up ----------------------------------------------------------------------------------
RESTART_REASON = ("the server restarted while its saga was running, and Step Functions executions do not survive "
                  "a restart of the embedded stack")


def start_with_state(stack: EmbeddedAws, store: StateStore, *, fresh: bool = False,
                     seed: Callable[[], None] | None = None, seed_customers: Callable[[], Any] | None = None,
                     ) -> EmbeddedAws:
    """Start ``stack`` on the state in ``store``: restore the tables, seed the demo data
    only into a state that has none, then finish every saga the restart cut short."""
    from ops.seed import seed_demo, seed_demo_customers

    store.acquire()
    if fresh:
        store.wipe()
    install_stable_identities()
    stack.start()
    restored = store.restore(dynamodb_backend())
    if DEMO_SEEDED not in store.meta:
        # Also after a start cut off while seeding: nothing was served yet, so
        # seeding again over what it left overwrites nothing anyone did.
        (seed or seed_demo)()
        store.note(**{DEMO_SEEDED: clock.now_iso()})
    else:
        (seed_customers or seed_demo_customers)()  # the pool is new; their subs are not
    finished = recovery.finish_lost_sagas(RESTART_REASON)
    _say(store, restored, finished)
    return stack


def _say(store: StateStore, restored: Restored, finished: dict[str, list[str]]) -> None:
    lost = {outcome: len(ids) for outcome, ids in finished.items() if ids}
    print(f"local state: {store.directory} ({restored.items} items restored in {restored.seconds:.2f} s"
          f"{', in-flight bookings finished: ' + json.dumps(lost) if lost else ''})", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m local.persistence reset DIR`` (make reset): forget the state in DIR,
    refused while a server uses it. Only this module's files go; the directory stays."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("action", choices=["reset"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"{args.directory}: no state to forget")
        return
    store = StateStore(args.directory)
    try:
        store.acquire()
    except StateInUse as exc:
        raise SystemExit(str(exc)) from None
    store.wipe()
    store.close()
    print(f"{args.directory}: state forgotten; the next `make run` starts from fresh demo data")


if __name__ == "__main__":
    main()
