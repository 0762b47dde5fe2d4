#!/usr/bin/env python3
"""Sampler and report of bench/soak.sh.

sample: every --interval seconds until --until (Unix time), one TSV line about the process
        --pid: seconds since the start, VmRSS and VmHWM (KiB), open descriptors (all, sockets,
        regular files, others), threads, CPU seconds (utime+stime), the number of files in
        --records-dir, the bytes in --cache-dir, and --upstream-pid's VmRSS.
report: reads that TSV, the load counters (lines "kind<TAB>outcome<TAB>count") and key=value
        facts about the run; writes the markdown report and prints the verdict.

The rule for "flat" (documented in docs/reliability.md, section Soak): with W the window
length (300 s for a 30-minute run), the first W seconds are warm-up; the reference is the
median of the window [W, 2W), the end the median of the last W seconds. A metric is FLAT when
    end median <= 1.10 x reference median + slack
with slack 2 MiB for RSS and 8 for the descriptor count; GROWING otherwise. The maximum after
warm-up and a least-squares slope over everything after warm-up are reported beside it.
"""
import argparse
import os
import statistics
import sys
import time

COLUMNS = ["t_s", "rss_kb", "hwm_kb", "fds", "fd_sockets", "fd_files", "fd_other", "threads",
           "cpu_s", "records_in_dir", "cache_bytes", "upstream_rss_kb"]


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def fd_counts(pid):
    socks = files = other = 0
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            target = os.readlink(f"{d}/{name}")
        except OSError:
            continue  # closed in between
        if target.startswith("socket:"):
            socks += 1
        elif target.startswith("/"):
            files += 1
        else:
            other += 1  # anon_inode:[eventpoll], [eventfd], [timerfd], pipe:[...]
    return socks + files + other, socks, files, other


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_files(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for _ in it)
    except OSError:
        return 0


def dir_bytes(d):
    total = 0
    for root, _, names in os.walk(d):
        for n in names:
            try:
                total += os.stat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return total


def sample(a):
    t0 = a.t0 if a.t0 else time.time()
    with open(a.out, "w") as out:
        out.write("\t".join(COLUMNS) + "\n")
        k = 0
        while True:
            now = time.time()
            if now >= a.until:
                break
            try:
                st = status_fields(a.pid)
                fds = fd_counts(a.pid)
                cpu = cpu_seconds(a.pid)
            except OSError:
                print(f"soak sampler: process {a.pid} is gone", file=sys.stderr)
                return 1
            try:
                up = status_fields(a.upstream_pid).get("VmRSS", 0) if a.upstream_pid else 0
            except OSError:
                up = 0
            row = [f"{now - t0:.1f}", st.get("VmRSS", 0), st.get("VmHWM", 0), *fds,
                   st.get("Threads", 0), f"{cpu:.2f}",
                   count_files(a.records_dir) if a.records_dir else 0,
                   dir_bytes(a.cache_dir) if a.cache_dir else 0, up]
            out.write("\t".join(str(v) for v in row) + "\n")
            out.flush()
            k += 1
            nxt = t0 + k * a.interval
            while nxt <= time.time():  # fell behind (a busy machine): skip, do not burst
                k += 1
                nxt = t0 + k * a.interval
            time.sleep(max(0.0, min(nxt, a.until) - time.time()))
    return 0


# ------------------------------------------------------------------------------------ report

def read_tsv(path):
    rows = []
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == len(head):
                rows.append({k: float(v) for k, v in zip(head, parts)})
    return rows


def slope_per_min(xs, ys):
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 60.0


def verdict(rows, col, window, slack, scale=1.0):
    """Figures of one column (values divided by scale) and FLAT/GROWING by the rule above."""
    t_end = rows[-1]["t_s"]
    vals = lambda lo, hi: [r[col] / scale for r in rows if lo <= r["t_s"] < hi]
    warm = vals(0, window)
    ref = vals(window, 2 * window)
    end = vals(t_end - window, t_end + 1)
    after = [r for r in rows if r["t_s"] >= window]
    if not ref or not end:
        return None
    ref_med, end_med = statistics.median(ref), statistics.median(end)
    limit = 1.10 * ref_med + slack
    return {
        "start": rows[0][col] / scale,
        "warm_max": max(warm) if warm else None,
        "ref_med": ref_med,
        "end_med": end_med,
        "limit": limit,
        "max_after": max(r[col] / scale for r in after),
        "min_after": min(r[col] / scale for r in after),
        "final": rows[-1][col] / scale,
        "slope": slope_per_min([r["t_s"] for r in after], [r[col] / scale for r in after]),
        "flat": end_med <= limit,
    }


def read_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            kind, outcome, n = parts
            try:
                n = int(n)
            except ValueError:
                continue
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += n
    return counts


def read_facts(path):
    facts = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                facts[k] = v
    return facts


KIND_NOTES = {
    "keepalive_https_miss": "hey, keep-alive, CONNECT + MITM, `Cache-Control: no-cache` (upstream every time, answer stored)",
    "keepalive_https_hit": "hey, keep-alive, CONNECT + MITM, one identical request (cache HIT)",
    "newconn_https_miss": "hey `-disable-keepalive`: CONNECT + TLS handshake per request, `no-cache`",
    "keepalive_http_miss": "hey, keep-alive, plain `http://` (absolute-form; upgraded to https upstream), `no-cache`",
    "newconn_http_hit": "hey `-disable-keepalive`, plain `http://`, one identical request (cache HIT)",
    "blind_tunnel": "hey `-disable-keepalive` through a blind tunnel (`--ignore-hosts`, `--log-tunnels`)",
    "new_hosts": "curl, a new connection per request to `h<i mod 200>.bench.test`: the first 200 mint a leaf and go upstream (MISS), the later ones use the cached leaf and are cache HITs (the key holds the host)",
}


def report(a):
    rows = read_tsv(a.samples)
    counts = read_counts(a.counts)
    facts = read_facts(a.facts)
    window = a.window
    if not rows:
        print("no samples", file=sys.stderr)
        return 1
    rss = verdict(rows, "rss_kb", window, 2.0, 1024.0)
    fds = verdict(rows, "fds", window, 8.0)
    thr = verdict(rows, "threads", window, 0.0)
    total_requests = sum(sum(o.values()) for o in counts.values())

    L = []
    L.append("# Soak run (bench/soak.sh)")
    L.append("")
    L.append(f"Run {facts.get('date_utc', '?')}, {facts.get('duration_s', '?')} s of load, "
             f"sampled every {facts.get('sample_s', '?')} s ({len(rows)} samples); window "
             f"W = {window} s.  ")
    L.append(f"Machine: {facts.get('nproc', '?')} × {facts.get('cpu', '?')}, "
             f"{facts.get('mem', '?')} RAM, kernel {facts.get('kernel', '?')}; "
             f"{facts.get('shared', 'shared with other jobs')}: load average "
             f"{facts.get('load_start', '?')} at the start, {facts.get('load_end', '?')} at the end.  ")
    L.append(f"llm_proxy `{facts.get('version', '?')}` (git {facts.get('git', '?')}, "
             f"{facts.get('build', '?')} build); hey {facts.get('hey', '?')}; curl {facts.get('curl', '?')}.  ")
    L.append(f"Command: `{facts.get('command', '?')}`  ")
    L.append(f"Proxy: `{facts.get('proxy_cmd', '?')}`")
    L.append("")
    L.append("## Memory and descriptors")
    L.append("")
    L.append(f"Rule: warm-up = the first W s; reference = median of [W, 2W); end = median of "
             f"the last W s; FLAT when end ≤ 1.10 × reference + slack (2 MiB for RSS, 8 "
             f"descriptors, 0 threads).")
    L.append("")
    L.append("| metric | at start | max in warm-up | reference median | end median | limit | max after warm-up | final | slope after warm-up | verdict |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, v, unit, d in (("RSS (MiB)", rss, "KiB/min", 0), ("descriptors", fds, "/min", 2),
                              ("threads", thr, "/min", 2)):
        if v is None:
            L.append(f"| {name} | – | – | – | – | – | – | – | – | too short |")
            continue
        L.append("| {} | {:.1f} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:+.{d}f} {} | **{}** |".format(
            name, v["start"], "–" if v["warm_max"] is None else f"{v['warm_max']:.1f}",
            v["ref_med"], v["end_med"], v["limit"], v["max_after"], v["final"],
            v["slope"] * (1024 if unit == "KiB/min" else 1), unit,
            "FLAT" if v["flat"] else "GROWING", d=d))
    hwm_final = rows[-1]["hwm_kb"] / 1024.0
    L.append("")
    L.append(f"VmHWM (peak RSS of the whole run): {hwm_final:.1f} MiB. "
             f"Descriptors after warm-up ranged {fds['min_after']:.0f}–{fds['max_after']:.0f}"
             if fds else f"VmHWM: {hwm_final:.1f} MiB.")
    if fds:
        L[-1] += (f" (sockets at the end: {rows[-1]['fd_sockets']:.0f}, regular files "
                  f"{rows[-1]['fd_files']:.0f}, other {rows[-1]['fd_other']:.0f}).")
    cpu = rows[-1]["cpu_s"] - rows[0]["cpu_s"]
    span = rows[-1]["t_s"] - rows[0]["t_s"]
    L.append(f"Proxy CPU over the run: {cpu:.0f} s ({100 * cpu / span:.0f} % of one core on average). "
             f"Fake upstream RSS at the end: {rows[-1]['upstream_rss_kb'] / 1024:.1f} MiB. "
             f"Cache directory at the end: {rows[-1]['cache_bytes'] / 1048576:.1f} MiB.")
    L.append("")
    L.append("## Load")
    L.append("")
    L.append(f"{total_requests:,} client attempts in all. Outcome: HTTP status, `curlN` "
             "(curl's exit code N: 18 = body cut short, 28 = timed out / the client gave up, "
             "52 = empty reply, 56 = connection reset), `hey:<message>` (hey's error "
             "distribution), for the raw cases `closed`/`sent` (see bench/soak_raw.py).")
    L.append("")
    L.append("| kind | attempts | outcomes |")
    L.append("|---|---:|---|")
    for kind in sorted(counts):
        o = counts[kind]
        outs = ", ".join(f"{k}: {v:,}" for k, v in sorted(o.items(), key=lambda kv: -kv[1]))
        note = KIND_NOTES.get(kind)
        L.append(f"| {kind}{' — ' + note if note else ''} | {sum(o.values()):,} | {outs} |")
    L.append("")
    L.append("## Records, upstream, end of run")
    L.append("")
    for key, label in (("records_written", "Records written (`*.json` files, counted as they were deleted plus those left)"),
                       ("records_deleted", "Records deleted during the run (older than the keep time)"),
                       ("records_left", "Records left at the end"),
                       ("upload_bytes", "Uploaded"),
                       ("upstream_requests", "Requests the fake upstream served (cache hits never reach it)"),
                       ("upstream_connections", "Connections the fake upstream accepted"),
                       ("upstream_open", "Upstream connections open after the load (the proxy's idle pool)"),
                       ("upstream_incomplete", "Upstream bodies cut short (`incomplete_bodies`)"),
                       ("cut_hits", "Cut-off upstream answers later served as cache HIT (must be 0)"),
                       ("final_check", "Request through the proxy after the load"),
                       ("final_hit", "`X-Llm_proxy-Cache` of the cache-hit request after the load"),
                       ("shutdown", "SIGTERM at the end"),
                       ("proxy_log_lines", "Lines in the proxy's log (warnings and errors only at its default level)"),
                       ("proxy_log_top", "Most frequent proxy log messages")):
        if key in facts:
            L.append(f"* {label}: {facts[key]}")
    L.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(L) + "\n")
    for name, v in (("rss", rss), ("fds", fds), ("threads", thr)):
        if v:
            print(f"{name}: reference {v['ref_med']:.1f} end {v['end_med']:.1f} limit {v['limit']:.1f} "
                  f"max-after-warm-up {v['max_after']:.1f} slope {v['slope']:+.3f}/min "
                  f"-> {'FLAT' if v['flat'] else 'GROWING'}")
    ok = all(v is None or v["flat"] for v in (rss, fds, thr))
    print("VERDICT: " + ("FLAT" if ok else "GROWING"))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--upstream-pid", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--until", type=float, required=True)
    s.add_argument("--t0", type=float, default=0.0)
    s.add_argument("--records-dir", default="")
    s.add_argument("--cache-dir", default="")
    r = sub.add_parser("report")
    r.add_argument("--samples", required=True)
    r.add_argument("--counts", required=True)
    r.add_argument("--facts", required=True)
    r.add_argument("--window", type=float, required=True)
    r.add_argument("--out", required=True)
    a = ap.parse_args()
    return sample(a) if a.cmd == "sample" else report(a)


if __name__ == "__main__":
    sys.exit(main())
