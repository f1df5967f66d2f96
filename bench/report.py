"""docs/benchmarks.md from the results of bench.run: measured figures only, each with
the command that produced it, compared against the project's targets."""

from __future__ import annotations

from typing import Any

from bench.cost import PRICE_SOURCES, PRICES
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    AWARD_MILES,
    CAPTURE_PAYMENT,
    CONFIRM_BOOKING,
    FORWARD_STEPS,
    REDEEM_POINTS,
    RESERVE_SEATS,
    BookingStatus,
)

STEPS = len(FORWARD_STEPS)

TARGETS = {
    "transitions": 9,  # happy path state transitions (one leg), at most; +1 per further leg
    "import_ratio": 1.3,  # import app / import boto3, at most
    "zip_mb": 2.0,  # deployment.zip, at most (MB = 10^6 bytes)
    "p50_ms": 150.0,  # local POST -> CONFIRMED p50 at concurrency 1, below (issue 13)
    "c16_vs_baseline": 3.0,  # bookings/s at concurrency 16 over the baseline's, in one run, at least (issue 13)
    "saga_requests": 12,  # DynamoDB requests of a happy booking's saga, at most (issue 13)
    "post_requests": 3,  # DynamoDB requests of POST /bookings, at most (issue 13)
    "poll_reads": 2,  # GET /bookings/{id}: one GetItem of the booking and one Query of its step log
    "ci_seconds": 360,  # bash .ci/run (make test) on a fresh clone, under (issue 13)
}
HAPPY = "happy path (points redeemed)"

# Why each DynamoDB write of a confirmed booking exists (function, table) -> reason; the
# functions are the Lambda names bench/cost.py attributes each write to.
WRITE_REASONS = {
    ("APIHandler (POST /bookings)", "bookings"): "the PENDING booking, conditional on a new id, in one transaction "
    "with its payment request and its Idempotency-Key record",
    ("APIHandler (POST /bookings)", "payments"): "the payment request: the only place the card token is kept",
    ("APIHandler (POST /bookings)", "idempotency"): "the Idempotency-Key record (the header is sent), conditional on "
    "a new key: a replay finds the first booking",
    (RESERVE_SEATS.function, "seats"): "the holds of a leg, one per passenger, conditional on each seat being free "
    "(never sold twice)",
    (RESERVE_SEATS.function, "bookings"): "the booking's note of the leg's seats, in the holds' transaction, so "
    "ReleaseSeats always finds them even if ReserveSeats timed out after writing",
    (REDEEM_POINTS.function, "loyalty"): "ledger entry keyed (booking, REDEEM) + balance update in one transaction: "
    "replays are no-ops and balance = opening + sum(ledger); the entry's own condition refuses it after a "
    "reversal's tombstone took its key (no third item)",
    (AUTHORIZE_PAYMENT.function, "payments"): "the authorisation decided (conditional on REQUESTED): one hold per "
    "booking, and the VOIDED tombstone race with VoidPayment",
    (AUTHORIZE_PAYMENT.function, "bookings"): "the booking's note of the payment as the customer sees it, in the "
    "decision's transaction: a status poll reads the money from the booking alone",
    (AWARD_MILES.function, "loyalty"): "ledger entry keyed (booking, AWARD) + balance, as RedeemPoints",
    (CONFIRM_BOOKING.function, "seats"): "HELD -> BOOKED, conditional on our hold",
    (CONFIRM_BOOKING.function, "bookings"): "PENDING -> CONFIRMED with ticket and boarding pass, in the same "
    "transaction as the seat",
    (CAPTURE_PAYMENT.function, "payments"): "AUTHORIZED -> CAPTURED after the pivot, conditional on the hold not "
    "released meanwhile; no read first (AuthorizePayment's result travels to it)",
    (CAPTURE_PAYMENT.function, "bookings"): "the booking's note of the capture, in the capture's transaction",
}
STEP_LOG = ("the step's own step-log item, written once when the attempt ends: a part of the step's transaction "
            "where it has one (its entry says SUCCEEDED exactly when its effect committed), else a write of its own; "
            "what GET /bookings/{id} shows of the step")


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def summary(results: dict[str, Any]) -> str:
    lines = ["", "Targets:"]
    for row in _targets(results):
        lines.append(f"  {row[0]}: {row[2]} (target {row[1]}) -> {row[3].replace('**', '')}")
    return "\n".join(lines)


def _targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    if "cost" in results:
        happy = results["cost"]["scenarios"][HAPPY]
        rows.append(("Happy path state transitions", f"<= {TARGETS['transitions']}",
                     str(happy["state_transitions"]), _verdict(happy["state_transitions"] <= TARGETS["transitions"])))
        rows += _request_targets(results["cost"])
        rows += _party_targets(results["cost"])
    if "coldstart" in results:
        ratio = results["coldstart"]["imports"]["ratio"]
        rows.append(("Handler import / import boto3", f"<= {TARGETS['import_ratio']}x", f"{ratio}x",
                     _verdict(ratio <= TARGETS["import_ratio"])))
        mb = results["coldstart"]["zip"]["mb"]
        rows.append(("deployment.zip", f"<= {TARGETS['zip_mb']} MB", f"{mb} MB", _verdict(mb <= TARGETS["zip_mb"])))
    if "e2e" in results:
        level = next(lv for lv in results["e2e"]["levels"] if lv["mix"] == "happy" and lv["concurrency"] == 1)
        rows.append(("Local p50 POST -> CONFIRMED, concurrency 1, client polling (section 1)",
                     f"< {TARGETS['p50_ms']:.0f} ms",
                     f"{_ms(level['p50_ms'])} ms", _verdict(level["p50_ms"] < TARGETS["p50_ms"])))
    if "suite" in results:
        ci = results["suite"]
        rows.append((f"`bash .ci/run` (make test) on a fresh clone of {ci['commit']}, venv install included",
                     f"< {TARGETS['ci_seconds']} s", f"{ci['seconds']:.0f} s (pytest {ci['pytest_seconds']:.0f} s: "
                     f"{ci['pytest_summary']}; exit {ci['exit_code']})",
                     _verdict(ci["seconds"] < TARGETS["ci_seconds"] and ci["exit_code"] == 0)))
    if "throughput" in results:
        levels = {level["concurrency"]: level for level in results["throughput"]["levels"]}
        if 16 in levels:
            ratio = levels[16]["throughput_ratio"]
            rows.append((f"Bookings/s at concurrency 16 over {results['throughput']['baseline']}'s (one run)",
                         f">= {TARGETS['c16_vs_baseline']}x", f"{ratio}x",
                         _verdict(ratio >= TARGETS["c16_vs_baseline"])))
        if 1 in levels and 16 in levels:
            c1, c16 = levels[1]["this"]["confirmed_per_s"], levels[16]["this"]["confirmed_per_s"]
            rows.append(("Bookings/s at concurrency 16 vs 1", ">= 1x", f"{c16} vs {c1}", _verdict(c16 >= c1)))
        if 1 in levels:
            this = levels[1]["this"]
            # Both must be under: what the booking records, and what a client polling every
            # POLL_SECONDS sees (its polls share the core with the saga).
            rows.append(("Local p50 POST -> CONFIRMED at concurrency 1: the client's, and as the booking records it",
                         f"< {TARGETS['p50_ms']:.0f} ms", f"{_ms(this['p50_ms'])} ms (server: "
                         f"{_ms(this['server_p50_ms'])} ms)",
                         _verdict(max(this["p50_ms"], this["server_p50_ms"]) < TARGETS["p50_ms"])))
    return rows


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench.run`; scripts in `bench/`). Figures are measured, "
        "never asserted in tests; rerun to refresh this file.",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, {m['platform']}",
        f"- Load average before / after: {', '.join(f'{x:.2f}' for x in results['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in results.get('load_after', ()))} (other work on the machine skews "
        "latencies; the embedded stack is one Python process, so the GIL serialises it)",
        f"- Total runtime: {results.get('total_seconds')} s",
        *(f"- Rerun later (`python -m bench.run --only {','.join(run['parts'])} --merge`): "
          f"{', '.join(run['parts'])} at {run['date']}" for run in results.get("later_runs", ())),
        "",
        "## Targets",
        "",
        "| Figure | Target | Measured | |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _targets(results)]
    out.append("")
    if "throughput" in results:
        out += _throughput(results["throughput"])
    if "e2e" in results:
        out += _e2e(results["e2e"])
    if "contention" in results:
        out += _contention(results["contention"])
    if "orchestration" in results:
        out += _orchestration(results["orchestration"])
    if "engine" in results:
        out += _engine(results["engine"])
    if "cost" in results:
        out += _cost(results["cost"])
    if "coldstart" in results:
        out += _coldstart(results["coldstart"])
    if "inventory" in results:
        out += _inventory(results["inventory"])
    if "orchestration" in results and "cost" in results:
        out += _findings(results)
    return "\n".join(out) + "\n"


def _findings(results: dict[str, Any]) -> list[str]:
    layers = results["orchestration"]["state_machine_profile"]["layers"]

    def pct(prefix: str) -> float:
        return round(sum(v["pct"] for name, v in layers.items() if name.startswith(prefix)), 1)

    happy = results["cost"]["scenarios"]["happy path (points redeemed)"]
    calls = happy["ddb_calls"]
    requests_total = sum(calls.values())
    log_writes = [w for w in happy["writes"] if w["table"] == "step_log"]
    log_alone = sum(1 for w in log_writes if w["operation"] != "TransactWriteItems")
    log_wru = sum(w["wru"] for w in log_writes)
    orchestration = results["orchestration"]
    return [
        "## Where the time goes, and what is ours",
        "",
        f"- Through the state machine, moto's Step Functions engine and Lambda dispatch take "
        f"{pct('moto Step Functions')}% of the CPU, moto's DynamoDB backend {pct('moto DynamoDB')}%, the "
        f"boto3/botocore client {pct('boto3')}%, and our own code (handlers, chalicelib, Powertools logging, "
        f"excluding the AWS calls it makes) {pct('our code')}%. The local p50 target is missed by the embedded "
        f"engine: the {STEPS} forward steps called directly take "
        f"{orchestration['direct_median_ms']} ms, the same steps through moto's engine "
        f"{orchestration['state_machine_median_ms']} ms.",
        "- Fixed after the first measurement, both found with this profile: moto's `transact_write_items` "
        "deep-copied every table a transaction touches as its rollback copy (O(table) per transaction, and "
        "slower the longer the server ran); local/hooks.py now backs up only the touched items. "
        "And the step log lived inside the booking item, so each of its ten writes rewrote the whole booking "
        "(and cost 3-4 WRU on AWS once the booking passed 1 KB); it is now one small item per step "
        "(the step_log table). Together they took the local p50 from 384 ms to the figure above and the "
        "direct path from 188 ms to the figure in section 2.",
        f"- A confirmed booking makes {requests_total} DynamoDB requests (POST and saga). Its {STEPS} step-log "
        f"entries cost {log_wru} of its {happy['wru_total']} WRU and {log_alone} requests of their own: each "
        "outcome is a part of its step's transaction where the step writes one (2 WRU, no request), else a "
        "write of its own (1 WRU); no RUNNING write precedes the work (the saga's verdict records a task that "
        "timed out or crashed).",
        "- At concurrency 16 the 10 ms status polling (16 clients, up to 1,600 GET/s offered) competes with "
        "the sagas for the one Python process of `chalice local` (GIL): throughput falls and latency is mostly "
        "queueing. It measures the local server, not a deployed stage (use bench/locustfile.py there).",
        "",
    ]


def _request_targets(cost: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Issue 13's request targets, and WRU no higher than the baseline's where one was measured."""
    happy = cost["scenarios"][HAPPY]
    if "saga" not in happy:  # results of a bench/cost.py from before the requests were split
        return []
    saga, post, poll = happy["saga"]["requests"], happy["post"]["requests"], happy["poll"]["requests"]
    rows = [
        ("DynamoDB requests, happy booking's saga", f"<= {TARGETS['saga_requests']}", str(saga),
         _verdict(saga <= TARGETS["saga_requests"])),
        ("DynamoDB requests, POST /bookings (with Idempotency-Key)", f"<= {TARGETS['post_requests']}", str(post),
         _verdict(post <= TARGETS["post_requests"])),
        ("DynamoDB requests, one status poll", f"<= {TARGETS['poll_reads']}", str(poll),
         _verdict(poll <= TARGETS["poll_reads"])),
    ]
    before = (cost.get("baseline") or {}).get("scenarios", {}).get(HAPPY)
    if before and "saga" in before:
        wru, was, commit = happy["wru_total"], before["wru_total"], cost["baseline"]["commit"]
        rows.append((f"WRU per happy booking (POST + saga) vs {commit}", f"<= {was}", str(wru), _verdict(wru <= was)))
        # The baseline has no CapturePayment (issue 14 added it after the pivot): like for
        # like is this booking without that step's writes.
        capture = happy["functions"].get(CAPTURE_PAYMENT.function, {}).get("wru", 0)
        if capture and CAPTURE_PAYMENT.function not in before.get("functions", {}):
            rows.append((f"WRU per happy booking vs {commit}, like for like (less CapturePayment's {capture}, "
                         "a step issue 14 added)", f"<= {was}", str(wru - capture), _verdict(wru - capture <= was)))
    return rows


def _party_targets(cost: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Issue 14: a happy booking's transitions, at most 9 for one leg plus 1 per further
    leg (STANDARD bills each), whatever the party's size."""
    from bench.cost import PARTIES, party_label

    rows = []
    for passengers, legs in PARTIES:
        result = cost["scenarios"].get(party_label(passengers, legs))
        if result is None:
            continue
        budget = TARGETS["transitions"] + (legs - 1)
        rows.append((f"State transitions, happy party {passengers}x{legs} (passengers x legs)", f"<= {budget}",
                     f"{result['state_transitions']} ({result['status']})",
                     _verdict(result["state_transitions"] <= budget and result["status"] == BookingStatus.CONFIRMED)))
    return rows


def _throughput(t: dict[str, Any]) -> list[str]:
    out = [
        f"## 0. Throughput against {t['baseline']}, alternated (`python -m bench.throughput`)",
        "",
        f"This code and {t['baseline']}'s (main before issue 13), each served by `chalice local --stage local` at "
        f"once; {t['rounds']} rounds, in each every level against one then the other (the order flipping each "
        f"round). Happy bookings as in section 1, each polled every {int(t['poll_s'] * 1000)} ms. Client p50: "
        "POST to CONFIRMED as the polling client sees it; server p50: the booking's created_at to ConfirmBooking's "
        "commit, no poll in it. Medians over the rounds.",
        "",
        "| Concurrency | Bookings | This: bookings/s | Baseline: bookings/s | Ratio (per round) | This: p50 client / "
        "server ms | Baseline: p50 client / server ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in t["levels"]:
        this, before = lv["this"], lv["baseline"]
        out.append(f"| {lv['concurrency']} | {lv['bookings']} | {this['confirmed_per_s']} | "
                   f"{before['confirmed_per_s']} "
                   f"| **{lv['throughput_ratio']}x** ({', '.join(map(str, lv['throughput_ratio_per_round']))}) | "
                   f"{_ms(this['p50_ms'])} / {_ms(this['server_p50_ms'])} | "
                   f"{_ms(before['p50_ms'])} / {_ms(before['server_p50_ms'])} |")
    return [*out, ""]


def _e2e(e2e: dict[str, Any]) -> list[str]:
    out = [
        "## 1. End to end, local (`python -m bench.e2e`)",
        "",
        "`chalice local --stage local` started as a subprocess on a free port (AWS_* stripped); each "
        "client thread POSTs /bookings (ECONOMY, auto-assigned seat, 1,000 points redeemed, so every "
        f"forward step runs) and polls GET /bookings/{{id}} every {int(e2e['poll_s'] * 1000)} ms until a terminal "
        "status. Latency = POST to terminal status as seen by the client. Failures mix: "
        "`simulate_failure: {<random forward step>: permanent}`.",
        "",
        "| Mix | Concurrency | Bookings | Outcome | Confirmed/s | Terminal/s | p50 ms | p95 ms | p99 ms "
        "| POST p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in e2e["levels"]:
        outcome = ", ".join(f"{k} {v}" for k, v in lv["statuses"].items())
        out.append(f"| {lv['mix']} | {lv['concurrency']} | {lv['bookings']} | {outcome} | {lv['confirmed_per_s']} | "
                   f"{lv['terminal_per_s']} | {_ms(lv['p50_ms'])} | {_ms(lv['p95_ms'])} | {_ms(lv['p99_ms'])} | "
                   f"{_ms(lv['post_p50_ms'])} |")
    c = e2e["contention"]
    out += [
        "",
        f"Connection errors retried by the client (same Idempotency-Key): {e2e.get('connection_retries', 0)}.",
        "",
        "### 3a. Contention over HTTP (`python -m bench.e2e`, last part)",
        "",
        f"{c['buyers']} buyers released together (a barrier) for the {c['cabin_seats']} FIRST seats of SA501 "
        f"against `chalice local` with the definitions unchanged (TimeoutSeconds 10 per task), each polling "
        f"every {int(c['poll_s'] * 1000)} ms:",
        "",
        f"- Seats sold (BOOKED in the seat map afterwards): **{c['sold_seats']}** of {c['cabin_seats']} "
        f"(HELD: {c.get('held_seats', '?')}); "
        f"confirmed bookings {c['confirmed']}, distinct seats among them {c['distinct_confirmed_seats']}",
        f"- Outcomes: {c['statuses']}",
        f"- Failed at (step:error): {c['failed_at']}",
        f"- Time to drain (first POST to last terminal status): {c['drain_s']} s; "
        f"p50 {_ms(c['p50_ms'])} ms, p99 {_ms(c['p99_ms'])} ms",
        f"- States.Timeout: {c.get('timeouts', '?')}; executions running at once at most "
        f"{c.get('max_running_executions', '?')} (EMBEDDED_MAX_RUNNING_EXECUTIONS; the others queued, RUNNING), "
        f"requests worked on at once at most {c.get('max_concurrent_requests', '?')}; "
        f"slowest task, scheduled to ended: {c.get('slowest_task_s', '?')} s of its 10 s",
        "",
    ]
    return out


def _contention(c: dict[str, Any]) -> list[str]:
    return [
        "### 3b. Contention in process (`python -m bench.contention`)",
        "",
        f"{c['buyers']} buyers started together through the domain API (as POST /bookings does) on the embedded "
        f"stack, for the {c['cabin_seats']} FIRST seats of SA501, with every forward task's TimeoutSeconds raised "
        f"to {c['task_timeout_s']} s so that queueing in one Python process is not turned into States.Timeout:",
        "",
        f"- Seats sold: **{c['sold_seats']}** of {c['cabin_seats']} (HELD afterwards: {c['held_seats']}); "
        f"confirmed bookings {c['confirmed']}, distinct seats among them {c['distinct_confirmed_seats']}",
        f"- Outcomes: {c['statuses']}; failed at (step:error): {c['failed_at']}",
        f"- All 100 POSTs accepted after {c['all_accepted_s']} s; drained (every booking terminal) after "
        f"**{c['drain_s']} s**",
        "",
    ]


def _engine(e: dict[str, Any]) -> list[str]:
    booking, poll = e["booking"], e["poll"]
    points = list(poll["cpu_ms_median"]["patched"])
    patches = ", ".join(f"`{name}`" for name in e.get("patches", ())) or "those of its day"
    return [
        "### 2b. What the embedded engine's patches save (`python -m bench.engine`)",
        "",
        "Process CPU (every thread), one process, the two ways alternated booking after booking. "
        "Patched: local/hooks.py as `chalice local` and the tests run it. moto: the same hooks with every "
        f"performance patch switched off (`hooks.unpatched(*hooks.PERFORMANCE_PATCHES)`: {patches}), i.e. "
        "moto's own behaviour. The other hooks stay on both ways: in-process Lambda, serialised DynamoDB "
        "requests, a transaction's item-level rollback copy, bounded running executions. What each patch "
        "does is in local/hooks.py's docstring.",
        "",
        f"- One booking (POST, the saga to CONFIRMED, one poll), median of {booking['bookings_per_mode']}: "
        f"patched **{_ms(booking['cpu_ms_median']['patched'])} ms**, moto {_ms(booking['cpu_ms_median']['moto'])} "
        f"ms: ratio **{booking['ratio_patched_to_moto']}**",
        f"- One status poll (GET /bookings/{{id}}'s work, `api.view_booking`), median of {poll['polls_per_point']}, "
        f"with {points[0]} and {points[1]} step-log items of other bookings: patched "
        f"{_ms(poll['cpu_ms_median']['patched'][points[0]])} and {_ms(poll['cpu_ms_median']['patched'][points[1]])} "
        f"ms (ratio **{poll['ratio_10k_to_0']['patched']}**); moto's Query "
        f"{_ms(poll['cpu_ms_median']['moto'][points[0]])} and {_ms(poll['cpu_ms_median']['moto'][points[1]])} ms "
        f"(ratio {poll['ratio_10k_to_0']['moto']})",
        "",
    ]


def _layers(profile: dict[str, Any]) -> list[str]:
    out = ["| Layer | CPU s | % |", "| --- | --- | --- |"]
    out += [f"| {name} | {v['cpu_s']} | {v['pct']} |" for name, v in profile["layers"].items()]
    return out


def _orchestration(o: dict[str, Any]) -> list[str]:
    out = [
        "## 2. Orchestration overhead (`python -m bench.orchestration`)",
        "",
        f"Same embedded tables, {o['bookings']} bookings each way (alternating), all {STEPS} forward steps "
        "(points redeemed). Direct: the handlers of app.py called in sequence with the events the state "
        "machine passes (JSON round trip, results under their ResultPath keys). Through the state machine: "
        "StartExecution on moto's engine, until its threads end.",
        "",
        f"- Direct, median per booking: **{_ms(o['direct_median_ms'])} ms**",
        f"- Through the state machine: **{_ms(o['state_machine_median_ms'])} ms**",
        f"- Ratio **{o['ratio']}x**, overhead {_ms(o['overhead_ms'])} ms per booking",
        f"- What-if, direct with the step log's writes (its part of the steps' transactions and the outcomes "
        f"written on their own) made no-ops: "
        f"{_ms(o.get('direct_without_step_log_median_ms', float('nan')))} ms (bench only; the code is unchanged)",
        f"- Items in the tables at the end: {o['table_items_at_end']}",
        "",
        f"Where the CPU goes: cProfile of every thread with a per-thread CPU clock (`bench/sampler.py`), "
        f"{o['profiled_bookings']} bookings each way.",
        "",
        "Through the state machine:",
        "",
        *_layers(o["state_machine_profile"]),
        "",
        "Direct:",
        "",
        *_layers(o["direct_profile"]),
        "",
        "Inclusive CPU of the embedded engine's hot spots (state machine run, s): "
        f"{o['state_machine_profile'].get('hotspots', {})}",
        "",
        "Top functions by own time (state machine run):",
        "",
        "| Function | Calls | Own s | Cumulative s |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| `{row['function']}` | {row['calls']} | {row['tottime_s']} | {row['cumtime_s']} |"
            for row in o["state_machine_profile"]["top"]]
    out.append("")
    return out


def _cost(c: dict[str, Any]) -> list[str]:
    out = [
        "## 4. Cost per booking (`python -m bench.cost`)",
        "",
        f"Real executions in the embedded stack ({next(iter(c['scenarios'].values())).get('runs', 1)} per path: "
        "counts from the last, durations their median). State transitions = StateEntered events of the "
        "execution history; Lambda invocations = LambdaFunctionScheduled events (+1 for the API handler of "
        "POST /bookings in the Lambda cost). DynamoDB: every request of chalicelib.db's client counted by "
        "operation and by the function that made it, with the item's size as moto stores it: writes "
        "ceil(max(before, after) / 1 KB) WRU per item, x2 in TransactWriteItems (a ConditionCheck item is "
        "counted as a transactional write item); GetItem/Query (strongly consistent) ceil(bytes / 4 KB) RRU, "
        "min 1 (BatchGetItem: each key as its GetItem). Status polling (GET /bookings/{id}) is not included "
        "here (one poll is priced apart below). Lambda durations are the handlers' "
        "measured in-process times against moto (pessimistic: moto's DynamoDB is far slower than DynamoDB).",
        "",
        "| Path | Status | Transitions | Lambda invocations | WRU | RRU | Lambda ms (sum) | "
        "$/1M STANDARD (128 MB) | $/1M EXPRESS (128 MB) | $/1M STANDARD (256 MB) | $/1M EXPRESS (256 MB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in c["scenarios"].items():
        small, large = r["per_million_usd"]["128 MB"], r["per_million_usd"]["256 MB"]
        out.append(f"| {label} | {r['status']} | {r['state_transitions']} | {r['lambda_invocations']} | "
                   f"{r['wru_total']} | {r['rru_total']} | {_ms(r['lambda_total_ms'])} | "
                   f"{small['total_standard']:,.2f} | {small['total_express']:,.2f} | "
                   f"{large['total_standard']:,.2f} | {large['total_express']:,.2f} |")
    happy = c["scenarios"]["happy path (points redeemed)"]
    parts = happy["per_million_usd"]["128 MB"]
    out += [
        "",
        f"Happy path per million bookings at 128 MB: Step Functions STANDARD ${parts['sfn_standard']:,.2f} "
        f"(EXPRESS ${parts['sfn_express']:,.2f}), Lambda ${parts['lambda']:,.2f}, DynamoDB ${parts['dynamodb']:,.2f}. "
        "EXPRESS duration is the moto execution's wall time rounded up to 100 ms at 64 MB.",
        "",
        f"States entered (happy path): {' -> '.join(happy['states_entered'])}",
        "",
        "Measured handler durations of the happy path (ms, in process against moto): "
        f"{happy['lambda_ms']}; POST /bookings {happy['post_ms']} ms; execution {happy['execution_ms']} ms.",
        "",
        "### DynamoDB writes of one confirmed booking",
        "",
        "| Function | Operation | Table | Item bytes | WRU | Why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for write in happy["writes"]:
        reason = STEP_LOG if write["table"] == "step_log" else \
            WRITE_REASONS.get((write["function"], write["table"]), "")
        out.append(f"| {write['function']} | {write['operation']} | {write['table']} | {write['bytes']} | "
                   f"{write['wru']} | {reason} |")
    log_wru = sum(w["wru"] for w in happy["writes"] if w["table"] == "step_log")
    out += [
        "",
        f"Total {happy['wru_total']} WRU, of which the step log is {log_wru} WRU (one small item per step: "
        "1 WRU a write on its own, 2 as a part of a transaction). Requests by function and operation: "
        f"{happy['ddb_calls']}.",
        "",
        *_before_after(c),
        "### Prices used (us-east-1, list, taken 2026-11-23)",
        "",
        "No live internet here: these are the published list prices as known on 2026-11-23 and checked against "
        "stored copies of the pricing pages; verify at the sources before relying on them.",
        "",
        "| Item | Price | Source |",
        "| --- | --- | --- |",
        f"| Step Functions STANDARD | ${PRICES['sfn_standard_per_transition'] * 1e6:,.2f} per million "
        "state transitions "
        f"| {PRICE_SOURCES['Step Functions']} |",
        f"| Step Functions EXPRESS | ${PRICES['sfn_express_per_request'] * 1e6:,.2f} per million requests + "
        f"${PRICES['sfn_express_per_gb_s']} per GB-second (first 1,000 GB-hours; 64 MB chunks, 100 ms rounding) "
        f"| {PRICE_SOURCES['Step Functions']} |",
        f"| Lambda (x86) | ${PRICES['lambda_per_request'] * 1e6:,.2f} per million requests + "
        f"${PRICES['lambda_per_gb_s']} per GB-second (1 ms billing) | {PRICE_SOURCES['Lambda']} |",
        f"| DynamoDB on-demand (Standard table class) | ${PRICES['ddb_per_wru'] * 1e6:,.3f} per million WRU, "
        f"${PRICES['ddb_per_rru'] * 1e6:,.3f} per million RRU | {PRICE_SOURCES['DynamoDB on-demand']} |",
        "",
        "Not included: API Gateway requests (POST plus every status poll), CloudWatch Logs ingestion "
        "(STANDARD state machine logging level ALL on dev), X-Ray, storage, free tiers.",
        "",
    ]
    return out


def _change(before: Any, after: Any) -> str:
    return str(after) if before is None or before == after else f"{before} → {after}"


def _before_after(c: dict[str, Any]) -> list[str]:
    """Requests, WRU and RRU per booking: POST, saga and one poll apart, then the happy
    path step by step, against the baseline measured in the same run."""
    if "saga" not in c["scenarios"][HAPPY]:
        return []
    baseline = c.get("baseline") or {}
    before = baseline.get("scenarios", {})
    commit = baseline.get("commit")
    out = ["### DynamoDB requests and request units per booking" + (f", {commit} → this code" if before else ""), ""]
    if baseline.get("error"):
        out += [f"The baseline ({commit}) could not be measured: `{baseline['error'].splitlines()[-1]}`", ""]
    out += [
        "`python -m bench.cost` measures this code and, with the same meter, the code of the baseline commit "
        "(`git archive` into a temporary directory, `--baseline REV`). POST /bookings is sent with an "
        "Idempotency-Key, as the page, bench.e2e and the locustfile send it; each run books a flight of its own, "
        "so an auto-assigned seat never loses a race. The poll is one `GET /bookings/{id}` "
        "(chalicelib.api.view_booking) of the terminal booking; it is not in the WRU/RRU totals above.",
        "",
        "| Path | Requests POST | Requests saga | Requests poll | WRU POST | WRU saga | RRU POST | RRU saga "
        "| RRU poll |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, after in c["scenarios"].items():
        was = before.get(label) or {}
        cells = [_change((was.get(phase) or {}).get(unit), after[phase][unit])
                 for phase, unit in (("post", "requests"), ("saga", "requests"), ("poll", "requests"),
                                     ("post", "wru"), ("saga", "wru"), ("post", "rru"), ("saga", "rru"),
                                     ("poll", "rru"))]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    happy, happy_before = c["scenarios"][HAPPY], before.get(HAPPY) or {}
    out += ["", f"Step by step ({HAPPY}):", "",
            "| Function | Requests | WRU | RRU | Operations |", "| --- | --- | --- | --- | --- |"]
    for name, after in happy["functions"].items():
        was = (happy_before.get("functions") or {}).get(name) or {}
        operations = ", ".join(f"{operation} {count}" for operation, count in after["operations"].items())
        if was and was.get("operations") != after["operations"]:
            operations = ", ".join(f"{op} {n}" for op, n in was["operations"].items()) + " → " + operations
        out.append(f"| {name} | {_change(was.get('requests'), after['requests'])} | "
                   f"{_change(was.get('wru'), after['wru'])} | {_change(was.get('rru'), after['rru'])} | "
                   f"{operations} |")
    out.append("")
    return out


def _coldstart(c: dict[str, Any]) -> list[str]:
    imports, z = c["imports"], c["zip"]
    return [
        "## 5. Cold start (`python -m bench.coldstart`)",
        "",
        f"`python -X importtime -c \"import app\"` (EMBEDDED_AWS unset, run from the project) against "
        f"`python -X importtime -c \"import boto3\"`, median of {len(imports['import app']['runs_ms'])} fresh "
        "interpreters each (bytecode cached):",
        "",
        f"- import app: **{imports['import app']['median_ms']} ms** (runs {imports['import app']['runs_ms']}); "
        f"heaviest packages by own import time: {imports['import app']['heaviest_packages_self_ms']}",
        f"- import boto3: **{imports['import boto3']['median_ms']} ms** (runs {imports['import boto3']['runs_ms']})",
        f"- Ratio **{imports['ratio']}x** (app.py does not import boto3: chalicelib.db and chalicelib.saga import it "
        "on first use, so the first DynamoDB call of a cold Lambda still pays boto3's import)",
        f"- Deployment package: **{z['mb']} MB** ({z['mib']} MiB, {z['files']} files), from {z['path']}; "
        f"largest parts compressed (KiB): {z['largest_compressed_kib']}",
        f"- aws-xray-sdk would add, zipped (KiB): {c['xray_sdk']['zipped_kib']}",
        "",
    ]


def _inventory(i: dict[str, Any]) -> list[str]:
    return [
        "## 6. Inventory (`python -m bench.inventory`)",
        "",
        f"- Seeding {i['flights']} flights x 162 seats ({i['seat_items']:,} seat items) into the embedded tables "
        f"with `seed_flights(inventory_flights({i['flights']}))` (batch writes): **{i['seed_s']} s** "
        f"({i['seed_items_per_s']:,} items/s)",
        f"- One seat map (`chalicelib.seats.seat_map`, one Query of 162 items) with that inventory loaded: "
        f"median **{i['seat_map_median_ms']} ms** of {i['seat_map_reads']} (runs {i['seat_map_runs_ms']})",
        f"- Profile of 3 seat maps: {i.get('seat_map_profile_cpu_s')} s CPU, of which moto's `Table.query` "
        f"{i.get('seat_map_moto_query_cpu_s')} s ({i.get('seat_map_moto_backend_pct')}% in moto's DynamoDB "
        "backend). moto alone would sort every item of the table (`Table.all_items`) on each Query; "
        "local/hooks.py hands it the asked partition only, as DynamoDB reads one partition.",
        "",
    ]
