#!/usr/bin/env python3
"""Writes the markdown report of scripts/bench-compare.sh from its results.

    scripts/bench-report.py target/bench-compare/results.jsonl DURATION WARMUP ROUNDS
    scripts/bench-report.py --parse redis-benchmark REQUESTS < output   # the proto group's
    scripts/bench-report.py --parse wrk < output                          # clients, as JSON

Each line of the results is one measurement (a load generator run against
one server, or one of the special scenarios), or the declaration of a
comparison (which scenario compares which subject with which baselines).
The table has a row per server of a comparison: the subject's first, then
each baseline's with the subject's ratio to it and the targets against
it, marked met or MISSED; the last line lists every target missed.
"""
import datetime
import json
import os
import platform
import statistics
import sys

# scenario -> its throughput targets: (ratio, how it reads) against the
# first baseline, or {baseline: (ratio, how it reads)} for several; None:
# no target.
TARGETS = {
    "tcp 64 B x1": (0.95, ">= 0.95x"),
    "tcp 64 B x64": (0.95, ">= 0.95x"),
    "tcp 64 B x256": (0.95, ">= 0.95x"),
    "churn x16": (1.2, ">= 1.20x"),
    "churn x16 at 8000/s": None,
    "udp 64 B x1": (0.9, ">= 0.90x"),
    "udp 64 B x16": (1.0, "> 1x"),
    "tcp 16KiB x1": (1.0, ">= 1.0x"),
    "tcp 16KiB x16": (1.0, ">= 1.0x"),
    "tcp 64KiB x1": (1.0, ">= 1.0x"),
    "tcp 64KiB x16": (1.0, ">= 1.0x"),
    "tcp 1MiB x1": (1.0, ">= 1.0x"),
    "tcp 1MiB x16": (1.0, ">= 1.0x"),
    "parked tcp 64KiB x16, epoll client": (1.0, ">= 1.0x"),
    "parked tcp 1MiB x16, epoll client": (1.0, ">= 1.0x"),
    "tls 64 B x1": (0.9, ">= 0.90x"),
    "tls 64 B x16": (0.9, ">= 0.90x"),
    "tls 64 B x256": (0.9, ">= 0.90x"),
    "parked tls 64 B x1": (0.9, ">= 0.90x"),
    "parked tls 64 B x16": (1.0, ">= 1.0x"),
    "parked tls 64 B x256": (1.0, ">= 1.0x"),
    "tls handshakes x16, resumed": None,
    "tls handshakes x16, full": None,
    "parked tls handshakes x16, full": None,
    "parked pipelined 16 x16, epoll client": (3.0, ">= 3x"),
    "parked churn x16": (1.0, ">= 1x"),
    "redis-benchmark -P 1": (1.0, ">= 1.0x"),
    "redis-benchmark -P 16": (0.8, ">= 0.8x"),
    "redis-benchmark -P 1, threading": None,
    "redis-benchmark -P 16, threading": None,
    "wrk -c64 vs nginx": (1.0, ">= 1.0x"),
    "wrk -c64 vs hyper": (1.0, ">= 1.0x"),
    "wrk -c256 vs nginx": (1.0, ">= 1.0x"),
    "wrk -c256 vs hyper": (1.0, ">= 1.0x"),
    "wrk -c64 vs nginx, threading": None,
    "wrk -c256 vs nginx, threading": None,
}
for clients in (16, 64, 256):
    TARGETS["parked tcp 64 B x%d, epoll client" % clients] = {"tokio-tcp": (1.05, ">= 1.05x")}
for scenario in ("parked tcp 64 B x16", "parked tcp 64 B x64", "parked tcp 64 B x256", "parked tcp 16KiB x16"):
    TARGETS[scenario] = {"tokio-tcp": (1.0, ">= 1.0x"), "crate-tcp": (0.95, ">= 0.95x")}

# The parked server's CPU per request against tokio's: at most this much,
# in every parked row measured against tokio.
CPU_LIMIT = 1.05

# Baselines that are there to show a bound, not to be beaten.
FLOORS = {"epoll-tcp": "(floor: a bare epoll loop)"}

# The longest wait: every run's longest latency under this, and no
# request failed.
WAIT_LIMIT_US = 100_000


def parse_redis_benchmark(raw, requests):
    """redis-benchmark --csv: one row per test. The run's throughput is its
    requests over its time (the tests' harmonic mean), its latency the
    worst test's."""
    import csv

    rows = [r for r in csv.reader(raw.splitlines()) if len(r) >= 7 and r[0] != "test"]
    rates, p50, p99 = [], [], []
    for row in rows:
        try:
            rates.append(float(row[1]))
            p50.append(float(row[4]) * 1000)
            p99.append(float(row[6]) * 1000)
        except ValueError:
            continue
    ok = bool(rates) and all(r > 0 for r in rates)
    return {
        "throughput": len(rates) / sum(1 / r for r in rates) if ok else 0.0,
        "ops": requests * len(rates),
        "latency_us": {"p50": round(max(p50, default=0)), "p99": round(max(p99, default=0))},
        "mismatches": 0,
        "errors": 0 if ok else 1,
        "timeouts": 0,
        "lost": 0,
        "output": raw[-500:] if not ok else "",
    }


def parse_wrk(raw):
    """wrk --latency's report."""
    import re

    def micros(number, unit):
        return float(number) * {"us": 1, "ms": 1000, "s": 1000000}[unit]

    latency = dict(
        (m.group(1), micros(m.group(2), m.group(3)))
        for m in re.finditer(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", raw, re.M)
    )
    requests = re.search(r"(\d+) requests in", raw)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", raw)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", raw)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", raw)
    ok = bool(requests and rate)
    return {
        "throughput": float(rate.group(1)) if rate else 0.0,
        "ops": int(requests.group(1)) if requests else 0,
        "latency_us": {"p50": round(latency.get("50", 0)), "p99": round(latency.get("99", 0))},
        "mismatches": int(non2xx.group(1)) if non2xx else 0,
        "errors": (sum(int(sockets.group(i)) for i in (1, 2, 3)) if sockets else 0) + (0 if ok else 1),
        "timeouts": int(sockets.group(4)) if sockets else 0,
        "lost": 0,
        "output": raw[-500:] if not ok else "",
    }


def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def duration(us):
    if us is None:
        return "n/a"
    if us >= 1000:
        return "%.2f ms" % (us / 1000.0)
    return "%d µs" % us


def failures(result):
    # "short" is absent from reports of older loadgen builds.
    return result["mismatches"] + result.get("short", 0) + result["errors"] + result["timeouts"] + result["lost"]


# Every target the report judges, in order: (what, met), for the summary
# at its end.
JUDGED = []


def kernel_total(runs, counter):
    """The sum of a kernel counter over the runs that recorded it, or "not
    recorded" when none did (results from before bench-compare.sh read
    it)."""
    counted = [r[counter] for r in runs if counter in r]
    return sum(counted) if counted else "not recorded"


def verdict(met, what):
    JUDGED.append((what, met))
    return "met" if met else "MISSED"


def baselines(comparison):
    # Results of older runs name a single "baseline".
    return comparison.get("baselines") or [comparison["baseline"]]


def target_for(scenario, baseline, first):
    """The throughput target against `baseline`: (ratio, how it reads), or None."""
    target = TARGETS.get(scenario)
    if isinstance(target, dict):
        return target.get(baseline)
    return target if baseline == first else None


def ratio_of(by_round, subject, baseline, value):
    """The median over the rounds of value(subject's run) / value(baseline's run)."""
    ratios = []
    for runs in by_round.values():
        if subject in runs and baseline in runs:
            mine, theirs = value(runs[subject]), value(runs[baseline])
            if mine is not None and theirs:
                ratios.append(mine / theirs)
    return statistics.median(ratios) if ratios else float("nan")


def compared(comparison, rows, ticks):
    """One comparison's rows of the table: the subject's figures, then each
    baseline's with the subject's ratio to it and the targets. Returns the
    rows, the failed requests and the connections the kernel dropped."""
    scenario, subject = comparison["comparison"], comparison["subject"]
    others = baselines(comparison)
    runs = [r for r in rows if r.get("scenario") == scenario and "result" in r]
    by_round = {}
    failed = dropped = 0
    for r in runs:
        by_round.setdefault(r["round"], {})[r["server"]] = r
        failed += failures(r["result"])
        dropped += r.get("listen_overflows", 0)

    def throughput(r):
        return r["result"]["throughput"]

    def cpu_per_op(r):
        ops = r["result"]["ops"]
        return r["cpu_ticks"] / ticks * 1e6 / ops if ops > 0 else None

    lines = []
    for server in [subject] + others:
        mine = [r for r in runs if r["server"] == server]
        if not mine:
            continue
        tput = statistics.median(throughput(r) for r in mine)
        p50 = statistics.median(r["result"]["latency_us"]["p50"] for r in mine)
        p99 = statistics.median(r["result"]["latency_us"]["p99"] for r in mine)
        per_op = [c for c in map(cpu_per_op, mine) if c is not None]
        cpu_op = "%.1f µs" % statistics.median(per_op) if per_op else "n/a"
        if server == subject:
            ratio, goal = "", ""
        else:
            value = ratio_of(by_round, subject, server, throughput)
            ratio = "**%.2fx**" % value
            goal = goal_text(scenario, subject, server, others[0], value)
            if scenario.startswith("parked ") and server == "tokio-tcp":
                cpu = ratio_of(by_round, subject, server, cpu_per_op)
                met = verdict(cpu <= CPU_LIMIT, "%s: CPU/request %.2fx tokio-tcp's" % (scenario, cpu))
                ratio += " (CPU %.2fx)" % cpu
                goal += "; CPU/request <= %.2fx %s" % (CPU_LIMIT, met)
        lines.append(
            "| %s | %s | %.0f/s | %s | %s | %s | %s | %s |"
            % (scenario, server, tput, duration(p50), duration(p99), cpu_op, ratio, goal)
        )
    return lines, failed, dropped


def goal_text(scenario, subject, baseline, first, ratio):
    """The target column of the subject against `baseline` (`first` is the
    comparison's first baseline)."""
    if scenario.startswith("versions: "):
        return "(this build against an older one)"
    if baseline in FLOORS:
        return FLOORS[baseline]
    target = target_for(scenario, baseline, first)
    if target is None:
        if baseline != first:
            return "(reported)"
        return "(latency at equal load)" if " at " in scenario else "(reported)"
    limit, text = target
    met = ratio > limit if text.startswith("> ") else ratio >= limit
    return "%s %s" % (text, verdict(met, "%s: %s %.2fx %s" % (scenario, subject, ratio, baseline)))


def longest_wait(waits):
    """The longest-wait table: each run's longest latency, and whether every
    wait stayed under WAIT_LIMIT_US with no request failed."""
    waits = sorted(waits, key=lambda r: r["run"])
    maxima = [r["result"]["latency_us"]["max"] for r in waits]
    failed = sum(failures(r["result"]) for r in waits)
    ops = sum(r["result"]["ops"] for r in waits)
    met = verdict(
        all(m < WAIT_LIMIT_US for m in maxima) and failed == 0 and ops > 0,
        "longest wait %s, %d failed" % (duration(max(maxima)), failed),
    )
    first = waits[0]
    return [
        "",
        "| longest wait, %s | runs | requests | each run's longest wait (ms) | longest | failures | target |"
        % waits[0]["server"],
        "|---|---|---|---|---|---|---|",
        "| %d connections, event-driven client, %s s runs back to back, no warm-up | %d | %d | %s | %s | %d |"
        " every wait < %d ms, none failed: %s |"
        % (
            first["connections"], first["seconds"], len(waits), ops, ", ".join("%.1f" % (m / 1000.0) for m in maxima),
            duration(max(maxima)), failed, WAIT_LIMIT_US // 1000, met,
        ),
    ]


def main():
    if sys.argv[1] == "--parse":
        raw = sys.stdin.read()
        if sys.argv[2] == "redis-benchmark":
            print(json.dumps(parse_redis_benchmark(raw, int(sys.argv[3]))))
        else:
            print(json.dumps(parse_wrk(raw)))
        return
    results_path, seconds, warmup, rounds = sys.argv[1:]
    rows = [json.loads(line) for line in open(results_path)]
    # Runs whose load generator printed no report: listed, then left out.
    unreported = [r for r in rows if r.get("result", {}) is None]
    rows = [r for r in rows if r.get("result", {}) is not None]
    ticks = os.sysconf("SC_CLK_TCK")
    out = []
    out.append(
        "Measured %s on %d cores (%s), Linux %s, with `scripts/bench-compare.sh`"
        % (datetime.date.today().isoformat(), os.cpu_count(), cpu(), platform.release())
    )
    out.append(
        "(%s rounds of %s s after %s s warm-up, the servers' order rotated every round; medians;"
        " ratio = the first server's throughput over this one's, the median of per-round ratios;"
        " CPU = the server's user + system time per request)." % (rounds, seconds, warmup)
    )
    if unreported:
        out.append("")
        out.append(
            "Runs with no report from the load generator (left out of the tables): %s"
            % ", ".join("%s %s round %s" % (r.get("scenario"), r.get("server", ""), r.get("round", r.get("run", "")))
                        for r in unreported)
        )
    comparisons = [r for r in rows if "comparison" in r]
    total_failures = 0
    overflows = 0
    if comparisons:
        out.append("")
        out.append("| scenario | server | throughput | p50 | p99 | CPU/request | ratio | target |")
        out.append("|---|---|---|---|---|---|---|---|")
    for comparison in comparisons:
        lines, failed, dropped = compared(comparison, rows, ticks)
        out.extend(lines)
        total_failures += failed
        overflows += dropped

    idle = next((r for r in rows if r.get("scenario") == "idle threading"), None)
    if idle:
        res = idle["result"]
        rss_mb = idle["peak_rss_kib"] / 1024.0
        out.append("")
        out.append("| ThreadingTcpServer, idle connections | connected | answered | failures | server peak RSS | target |")
        out.append("|---|---|---|---|---|---|")
        out.append(
            "| %d (worker stacks 64 KiB) | %d | %d | %d | %.0f MB | all answered, < 150 MB: %s |"
            % (
                res["connections"], res["connected"], res["ops"], failures(res), rss_mb,
                verdict(res["ops"] == res["connections"] and rss_mb < 150, "idle ThreadingTcpServer"),
            )
        )

    parked = next((r for r in rows if r.get("scenario") == "idle parked"), None)
    if parked:
        connected = sum(r["connected"] for r in parked["results"])
        answered = sum(r["ops"] for r in parked["results"])
        grown = parked["rss_after_kib"] - parked["rss_before_kib"]
        per_conn = grown * 1024.0 / max(connected, 1)
        extra_threads = parked["threads_after"] - parked["workers"]
        out.append("")
        out.append(
            "| ParkedTcpServer, idle connections | connected | answered | RSS | per connection | threads | target |"
        )
        out.append("|---|---|---|---|---|---|---|")
        out.append(
            "| 19,000 (two client processes, 127.0.0.2 and .3) | %d | %d | %.1f -> %.1f MB | %.0f bytes |"
            " %d (%d workers + %d) | all answered, <= 2 KiB each, <= workers + 4 threads: %s |"
            % (
                connected, answered, parked["rss_before_kib"] / 1024.0, parked["rss_after_kib"] / 1024.0,
                per_conn, parked["threads_after"], parked["workers"], extra_threads,
                verdict(answered == 19000 and per_conn <= 2048 and extra_threads <= 4, "19,000 idle parked connections"),
            )
        )

    if parked and parked.get("slab_kib") is not None:
        # Both ends of each connection are on this machine: half the growth
        # of the kernel's slab memory is the server's side.
        out.append("")
        out.append(
            "Kernel memory (slab) grew by %.1f MB for the 19,000 connections, both ends: about %.0f bytes"
            " per connection on the server's side, not counted in its RSS."
            % (parked["slab_kib"] / 1024.0, parked["slab_kib"] * 1024.0 / 2 / 19000)
        )

    stops = [r for r in rows if r.get("scenario") == "shutdown"]
    if stops:
        out.append("")
        out.append("| stopping a server (SIGTERM, grace 0) | clients | serve_forever returned | process exited | target |")
        out.append("|---|---|---|---|---|")
        for r in stops:
            took = r["shutdown_us"] / 1000.0 if r["shutdown_us"] is not None else None
            clients = "{:,} idle".format(r["clients"])
            if r["server"] == "crate-tcp":
                out.append(
                    "| ThreadingTcpServer | %s | %.1f ms | %d ms | serve_forever < 50 ms: %s |"
                    % (clients, took, r["exit_ms"], verdict(took < 50, "stopping ThreadingTcpServer"))
                )
            elif r["server"] == "crate-parked":
                out.append(
                    "| ParkedTcpServer | %s | %.1f ms | %d ms | < 20 ms, exit < 100 ms: %s |"
                    % (clients, took, r["exit_ms"], verdict(took < 20 and r["exit_ms"] < 100, "stopping ParkedTcpServer"))
                )
            else:
                out.append("| tokio echo (baseline) | %s | n/a | %d ms | |" % (clients, r["exit_ms"]))
        floor = next((r["result"] for r in rows if r.get("scenario") == "close floor"), None)
        if floor:
            out.append(
                "| a plain loop of close() calls (scripts/close-floor.py, the kernel's floor) | {:,} idle | %.1f ms | | |".format(
                    floor["connections"]
                )
                % floor["close_ms"]
            )
        if parked:
            out.append(
                "| ParkedTcpServer | 19,000 parked | %.1f ms | %d ms | |"
                % (parked["shutdown_us"] / 1000.0, parked["exit_ms"])
            )

    files = [r for r in rows if r.get("bench") == "file" and "mb_per_s" in r]
    if files:
        # scripts/bench-file.sh: a 1 GiB file through file_server, with its
        # baselines measured in the same run.
        peak = max((r["kib"] for r in rows if r.get("bench") == "file" and r.get("case") == "server-peak-rss"), default=None)
        names = {
            "upload": "upload (file_client put, SHA-256 at both ends)",
            "download": "download (file_client get, SHA-256 at both ends)",
            "plain-copy": "plain copy over loopback into a file, no hashing (baseline)",
            "sha256-one-core": "SHA-256 alone on one core (baseline)",
        }
        out.append("")
        out.append("| 1 GiB file, loopback (scripts/bench-file.sh) | MB/s | server peak RSS | target |")
        out.append("|---|---|---|---|")
        for case in ("upload", "download", "plain-copy", "sha256-one-core"):
            mine = [r for r in files if r["case"] == case]
            if not mine:
                continue
            rate = statistics.median(r["mb_per_s"] for r in mine)
            if case in ("upload", "download"):
                rss = "%.0f MB" % (peak / 1024.0) if peak is not None else "n/a"
                ok = rate >= 1000 and all(r.get("sha256_verified") for r in mine) and peak is not None and peak < 50 * 1024
                target = ">= 1000 MB/s, RSS < 50 MB: %s" % verdict(ok, "1 GiB file %s" % case)
            else:
                rss, target = "", ""
            out.append("| %s | %.0f | %s | %s |" % (names[case], rate, rss, target))

    stalls = [r for r in rows if r.get("scenario") == "tls stalled"]
    if stalls:
        out.append("")
        out.append("| a TLS client's round trips | server | p50 alone | p99 alone | p50, 200 handshakes stalled | p99, 200 stalled | failures | target |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in stalls:
            alone, stalled = r["alone"], r["stalled"]
            ok = failures(stalled) == 0 and stalled["latency_us"]["p99"] <= alone["latency_us"]["p99"] + 50_000
            target = "p99 within alone + 50 ms: %s" % verdict(ok, "TLS stalls, %s" % r["server"]) if r["server"].startswith("crate") else "(for contrast)"
            out.append(
                "| 1 client, 64 B | %s | %s | %s | %s | %s | %d | %s |"
                % (
                    r["server"], duration(alone["latency_us"]["p50"]), duration(alone["latency_us"]["p99"]),
                    duration(stalled["latency_us"]["p50"]), duration(stalled["latency_us"]["p99"]),
                    failures(stalled), target,
                )
            )

    slow = [r for r in rows if r.get("scenario") == "slowloris"]
    if slow:
        out.append("")
        out.append(
            "| slow clients (a byte a second each) | server | fresh clients served | fresh p99 | fresh failures | slow clients' replies | target |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for r in slow:
            fresh, slow_result = r["fresh"], r["slow_result"]
            ok = failures(fresh) == 0 and fresh["latency_us"]["p99"] < 50_000
            target = "all served, p99 < 50 ms: %s" % verdict(ok, "slowloris") if r["server"] == "crate-parked" else "(for contrast)"
            out.append(
                "| %d slow, 64 workers | %s | %d (%.0f/s) | %s | %d | %d | %s |"
                % (
                    r["slow"], r["server"], fresh["ops"], fresh["throughput"], duration(fresh["latency_us"]["p99"]),
                    failures(fresh), slow_result["ops"], target,
                )
            )

    waits = [r for r in rows if r.get("scenario") == "longest wait"]
    if waits:
        out.extend(longest_wait(waits))

    if comparisons:
        # What the kernel (the whole machine's) counted during the compared
        # runs: a request that waited 200 ms or more beside a retransmission
        # timeout points to a lost packet resent, not a server that forgot it.
        compared_scenarios = {c["comparison"] for c in comparisons}
        runs = [r for r in rows if r.get("scenario") in compared_scenarios and r.get("result")]
        out.append("")
        out.append(
            "Client-side failures across the compared runs (mismatches, errors, timeouts, losses): %d;"
            " connections the kernel dropped for a full accept queue meanwhile: %d;"
            " TCP retransmission timeouts meanwhile: %s; packets dropped by the kernel's input backlog: %s"
            % (
                total_failures,
                overflows,
                kernel_total(runs, "tcp_timeouts"),
                kernel_total(runs, "backlog_drops"),
            )
        )
        for r in runs:
            failed = failures(r["result"])
            if failed:
                out.append(
                    "- %s, %s, round %s: %d failed, the longest wait %s; the kernel meanwhile: %s retransmission"
                    " timeouts, %s backlog drops, %s accept-queue drops"
                    % (
                        r["scenario"],
                        r["server"],
                        r["round"],
                        failed,
                        # wrk's and redis-benchmark's reports have no maximum.
                        duration(r["result"]["latency_us"].get("max")),
                        r.get("tcp_timeouts", "(not recorded)"),
                        r.get("backlog_drops", "(not recorded)"),
                        r.get("listen_overflows", 0),
                    )
                )
    if JUDGED:
        missed = [what for what, met in JUDGED if not met]
        out.append("")
        out.append(
            "Targets: %d met, %d MISSED%s"
            % (len(JUDGED) - len(missed), len(missed), (": " + "; ".join(missed)) if missed else ".")
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
