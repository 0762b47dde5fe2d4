#!/usr/bin/python3
"""Turns bench/run.sh's raw TSV files into the markdown report and the gnuplot data file.

Medians over repeats; ratios are computed per repeat (targets of the same repeat ran back to
back) and then the median of the ratios is shown.
"""

import argparse
import csv
import json
import statistics
from collections import defaultdict

NAMES = {
    "direct": "direct (no proxy)",
    "tinyproxy": "tinyproxy (CONNECT tunnel, no MITM)",
    "llm_simple": "llm_proxy simple",
    "llm_tunnel": "llm_proxy simple --ignore-hosts . (blind tunnel, no MITM)",
    "llm_before": "llm_proxy simple, earlier version (BENCH_BEFORE_BIN)",
    "llm_tunnel_before": "llm_proxy simple --ignore-hosts ., earlier version (BENCH_BEFORE_BIN)",
    "llm_dirlog": "llm_proxy dir_logger",
    "llm_dirlog_tmpfs": "llm_proxy dir_logger, records on tmpfs",
    "mitmdump": "mitmdump",
    "mitmdump_stream": "mitmdump --set stream_large_bodies=1",
}
ORDER = ["direct", "tinyproxy", "llm_tunnel", "llm_tunnel_before", "llm_before", "llm_simple", "llm_dirlog", "llm_dirlog_tmpfs", "mitmdump",
         "mitmdump_stream"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1, suffix=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{suffix}"


def spread(values, digits=0):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return ""
    return f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--sse")
    ap.add_argument("--download")
    ap.add_argument("--upload")
    ap.add_argument("--tunnels")
    ap.add_argument("--versions", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot-data", required=True)
    a = ap.parse_args()

    info = {}
    with open(a.versions) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                info[k] = v

    rows = [r for r in read_tsv(a.runs) if r["scenario"] != "warm"]
    # by[(scenario, conc)][target][rep] = row
    by = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by[(r["scenario"], int(r["conc"]))][r["target"]][int(r["rep"])] = r
    keys = sorted(by, key=lambda k: (k[0], k[1]))
    targets = [t for t in ORDER if any(t in by[k] for k in keys)]

    def metric(key, target, field):
        return [num(r[field]) for r in by[key].get(target, {}).values()]

    def per_rep_ratio(key, t1, t2, field):
        out = []
        reps1, reps2 = by[key].get(t1, {}), by[key].get(t2, {})
        for rep in reps1:
            if rep in reps2:
                out.append(ratio(num(reps1[rep][field]), num(reps2[rep][field])))
        return med(out)

    L = []
    L.append("## Results")
    L.append("")
    L.append(f"Run {info.get('date_utc', '?')} on {info.get('nproc', '?')} × {info.get('cpu', '?')} "
             f"(kernel {info.get('kernel', '?')}); wall time of bench/run.sh: {info.get('wall_s', '?')} s.  ")
    L.append(f"llm_proxy: `{info.get('llm_proxy', '?')}` (git {info.get('llm_proxy_git', '?')}); "
             f"mitmdump {info.get('mitmdump', '?')}; tinyproxy {info.get('tinyproxy', '?')}; "
             f"hey {info.get('hey', '?')}; {info.get('openssl', '?')}.  ")
    if info.get("loadavg"):
        L.append(f"Load average of the machine: {info['loadavg']}.  ")
    L.append(f"Settings: `{info.get('settings', '')}`; every proxy with one worker thread where it has the option "
             f"(llm_proxy `--threads 1`; mitmdump is one Python process; tinyproxy a thread per connection).")
    L.append("")
    L.append("Medians of the repeats, (min–max) over the repeats in brackets. CPU µs/req = the proxy "
             "process's utime+stime delta during the run ÷ number of 200 responses (10 ms tick "
             "resolution: one tick ÷ requests per run, 5 µs at 2,000). Peak RSS = VmHWM, reset (clear_refs) "
             "before the run. hey, the fake upstream (1 thread) and the proxy share the same cores.")
    L.append("")
    L.append("| scenario | conc | target | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy peak RSS MiB | 200s / sent |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    scen_name = {"A": "A keep-alive", "B": "B new conn/req"}
    for key in keys:
        for t in targets:
            if t not in by[key]:
                continue
            reps = by[key][t]
            ok = sum(int(r["ok"] or 0) for r in reps.values())
            sent = sum(int(r["n"] or 0) for r in reps.values())
            hwm = med(metric(key, t, "hwm_kb"))
            L.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                scen_name.get(key[0], key[0]), key[1], NAMES.get(t, t),
                fmt(med(metric(key, t, "rps")), 0) + spread(metric(key, t, "rps")),
                fmt(med(metric(key, t, "p50_ms")), 2),
                fmt(med(metric(key, t, "p99_ms")), 2),
                fmt(med(metric(key, t, "cpu_us_per_req")), 0) + spread(metric(key, t, "cpu_us_per_req")),
                fmt(hwm / 1024 if hwm else None, 1), f"{ok}/{sent}"))
    L.append("")

    if "llm_tunnel" in targets and "tinyproxy" in targets:
        blind_tunnels(L, keys, targets, metric, per_rep_ratio, scen_name)

    if "llm_simple" in targets and "mitmdump" in targets:
        L.append("### Ratios (per repeat, then median)")
        L.append("")
        L.append("| scenario | conc | CPU/req mitmdump ÷ llm_proxy | req/s llm_proxy ÷ mitmdump | "
                 "req/s llm_proxy ÷ direct | req/s mitmdump ÷ direct | p50 added vs direct: llm_proxy / mitmdump (ms) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for key in keys:
            d50 = med(metric(key, "direct", "p50_ms"))
            l50 = med(metric(key, "llm_simple", "p50_ms"))
            m50 = med(metric(key, "mitmdump", "p50_ms"))
            add = "{} / {}".format(fmt(None if d50 is None or l50 is None else l50 - d50, 2),
                                   fmt(None if d50 is None or m50 is None else m50 - d50, 2))
            L.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                scen_name.get(key[0], key[0]), key[1],
                fmt(per_rep_ratio(key, "mitmdump", "llm_simple", "cpu_us_per_req"), 1, "×"),
                fmt(per_rep_ratio(key, "llm_simple", "mitmdump", "rps"), 1, "×"),
                fmt(per_rep_ratio(key, "llm_simple", "direct", "rps"), 2),
                fmt(per_rep_ratio(key, "mitmdump", "direct", "rps"), 2), add))
        L.append("")

    dirlogs = [t for t in ("llm_dirlog", "llm_dirlog_tmpfs") if t in targets]
    if "llm_simple" in targets and dirlogs:
        L.append("### G: dir_logger on vs off (dir_logger ÷ simple, per repeat, then median)")
        L.append("")
        L.append("Records written = files `*.json` that appeared in the output directory during the "
                 "run (the CPU figure is taken once all of them are there, at most 10 s later); "
                 "each 200 response must give one.")
        L.append("")
        for t in dirlogs:
            if info.get("records_fs_" + t):
                L.append(f"{NAMES[t]}: records on {info['records_fs_' + t]}.  ")
        L.append("")
        L.append("| scenario | conc | dir_logger | CPU/req | req/s | p50 | records written / 200s |")
        L.append("|---|---:|---|---:|---:|---:|---:|")
        for key in keys:
            for t in dirlogs:
                reps = by[key].get(t, {})
                if not reps:
                    continue
                written = [int(r["records"]) for r in reps.values() if r.get("records")]
                ok = sum(int(r["ok"] or 0) for r in reps.values())
                L.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                    scen_name.get(key[0], key[0]), key[1],
                    "records on tmpfs" if t == "llm_dirlog_tmpfs" else "records on disk",
                    fmt(per_rep_ratio(key, t, "llm_simple", "cpu_us_per_req"), 2, "×"),
                    fmt(per_rep_ratio(key, t, "llm_simple", "rps"), 2, "×"),
                    fmt(per_rep_ratio(key, t, "llm_simple", "p50_ms"), 2, "×"),
                    f"{sum(written)}/{ok}" if written else "–"))
        L.append("")

    if a.sse:
        sse = read_tsv(a.sse)
        if sse:
            st = defaultdict(list)
            for r in sse:
                st[r["target"]].append(r)
            L.append("### C: SSE latency ({})".format(info.get("sse", "")))
            L.append("")
            L.append("One keep-alive client connection, streams one after another; first stream excluded. "
                     "Event latency = receive time − upstream `sent_at_us`. Medians of the repeats.")
            L.append("")
            L.append("| target | time to first event ms | event latency p50 ms | event latency p99 ms | "
                     "whole stream ms | added p50 vs direct ms | relays events as they arrive? |")
            L.append("|---|---:|---:|---:|---:|---:|---|")
            d = med([num(r["event_lat_ms_p50"]) for r in st.get("direct", [])])
            for t in ORDER:
                if t not in st:
                    continue
                p50 = med([num(r["event_lat_ms_p50"]) for r in st[t]])
                ttfe = med([num(r["ttfe_ms"]) for r in st[t]])
                whole = med([num(r["stream_ms"]) for r in st[t]])
                buffered = ttfe is not None and whole is not None and whole - ttfe < 0.2 * whole
                L.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                    NAMES.get(t, t), fmt(ttfe, 2), fmt(p50, 3),
                    fmt(med([num(r["event_lat_ms_p99"]) for r in st[t]]), 3),
                    fmt(whole, 1),
                    fmt(None if d is None or p50 is None else p50 - d, 3),
                    "**no: whole response buffered**" if buffered else "yes"))
            L.append("")

    if a.download:
        dl = read_tsv(a.download)
        if dl:
            st = defaultdict(list)
            for r in dl:
                st[r["target"]].append(r)
            size = num(dl[0]["bytes"]) or 0
            L.append("### E: one large download ({:,.0f} MiB, `GET /download`, curl, one connection)".format(size / 1048576))
            L.append("")
            L.append("Medians of the repeats (min–max). RSS growth = peak RSS during the download − RSS before it.")
            L.append("")
            L.append("| target | complete / runs | MiB/s | proxy CPU ms per GiB | proxy peak RSS MiB | RSS growth MiB |")
            L.append("|---|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t not in st:
                    continue
                rs = st[t]
                done = sum(1 for r in rs if r["http"] == "200" and num(r["size"]) == num(r["bytes"]))
                mib = [num(r["mib_s"]) for r in rs]
                gib = [num(r["bytes"]) / 1073741824 for r in rs]
                cpu = [None if num(r["cpu_us"]) is None else num(r["cpu_us"]) / 1000 / g for r, g in zip(rs, gib)]
                hwm = [None if num(r["hwm_kb"]) is None else num(r["hwm_kb"]) / 1024 for r in rs]
                grow = [None if num(r["hwm_kb"]) is None or num(r["rss_before_kb"]) is None
                        else (num(r["hwm_kb"]) - num(r["rss_before_kb"])) / 1024 for r in rs]
                L.append("| {} | {}/{} | {} | {} | {} | {} |".format(
                    NAMES.get(t, t), done, len(rs), fmt(med(mib), 0) + spread(mib),
                    fmt(med(cpu), 0) + spread(cpu), fmt(med(hwm), 1), fmt(med(grow), 1) + spread(grow, 1)))
            L.append("")

    if a.upload:
        up = read_tsv(a.upload)
        if up:
            st = defaultdict(list)
            for r in up:
                st[(int(r["bytes"]), r["target"])].append(r)
            sizes = sorted({k[0] for k in st})
            L.append("### U: chunked uploads ({}, `POST /sink` with `Transfer-Encoding: chunked`, curl, one connection)".format(
                ", ".join(f"{s / 1048576:,.0f} MiB" for s in sizes)))
            L.append("")
            L.append("Each run uploads a random file made once from /dev/urandom. Intact = HTTP 200 and the fake "
                     "upstream's `/sink` read exactly the file's length with the same sha256; a run that is not "
                     "intact has no MiB/s. MiB/s = file size ÷ (curl's `time_total` − `time_pretransfer`): from the start "
                     "of the request to the upstream's answer, without the connection, CONNECT and TLS set-up "
                     "before it (and curl's loading of the CA bundle), which would dominate 1 MiB. "
                     "Proxy CPU ms = utime+stime of the proxy during the upload (10 ms ticks). "
                     "RSS growth = peak RSS during the upload − RSS before it. Medians of the repeats (min–max).")
            L.append("")
            L.append("| size MiB | target | intact / runs | MiB/s | proxy CPU ms | proxy peak RSS MiB | "
                     "RSS growth MiB | framing at the upstream |")
            L.append("|---:|---|---:|---:|---:|---:|---:|---|")
            for size in sizes:
                for t in ORDER:
                    rs = st.get((size, t))
                    if not rs:
                        continue
                    good = sum(1 for r in rs if r["ok"] == "1")
                    mib = [num(r["mib_s"]) for r in rs]
                    cpu = [None if num(r["cpu_us"]) is None else num(r["cpu_us"]) / 1000 for r in rs]
                    hwm = [None if num(r["hwm_kb"]) is None else num(r["hwm_kb"]) / 1024 for r in rs]
                    grow = [None if num(r["hwm_kb"]) is None or num(r["rss_before_kb"]) is None
                            else (num(r["hwm_kb"]) - num(r["rss_before_kb"])) / 1024 for r in rs]
                    framing = ", ".join(sorted({r["framing"] for r in rs if r["framing"]})) or "–"
                    intact = f"{good}/{len(rs)}" if good == len(rs) else f"**{good}/{len(rs)}**"
                    L.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                        fmt(size / 1048576, 0), NAMES.get(t, t), intact, fmt(med(mib), 0) + spread(mib),
                        fmt(med(cpu), 0) + spread(cpu), fmt(med(hwm), 1), fmt(med(grow), 1) + spread(grow, 1),
                        framing))
            L.append("")

    if a.tunnels:
        recs = []
        with open(a.tunnels) as f:
            for line in f:
                line = line.strip()
                if line:
                    recs.append(json.loads(line))
        idle = defaultdict(list)
        hosts = defaultdict(list)
        for r in recs:
            (idle if r.get("mode") == "idle" else hosts)[r["target"]].append(r)
        if idle:
            L.append("### D: idle intercepted connections and blind tunnels (bench/tunnels.py idle)")
            L.append("")
            L.append("Each connection: CONNECT, TLS handshake with the proxy's leaf, one keep-alive "
                     "`GET /v1/models`, then held open. RSS per connection = (RSS with all of them "
                     "open after 1 s − RSS before) ÷ connections. One run per target on a freshly started "
                     "process: one that served the earlier load would reuse that heap and understate the cost.")
            L.append("Blind tunnels (`tunnels.py idle --blind`: llm_tunnel, tinyproxy): the same, but the TLS "
                     "handshake is with the upstream through the tunnel, the client trusting the upstream's CA "
                     "alone; \"certificate issued by\" shows whose certificate it verified.")
            L.append("")
            L.append("| target | kind | connections | RSS per connection KiB | RSS before → after MiB | "
                     "still answering | certificate issued by |")
            L.append("|---|---|---:|---:|---:|---:|---|")
            for t in ORDER:
                if t not in idle:
                    continue
                rs = idle[t]
                per = [r["kib_per_connection"] for r in rs]
                L.append("| {} | {} | {} | {} | {} → {} | {} | {} |".format(
                    NAMES.get(t, t), "blind tunnel" if rs[0].get("blind") else "intercepted",
                    med([r["opened"] for r in rs]), fmt(med(per), 1) + spread(per, 1),
                    fmt(med([r["rss_before_kib"] / 1024 for r in rs]), 1),
                    fmt(med([r["rss_after_kib"] / 1024 for r in rs]), 1),
                    # tunnels.py checks every (opened // 20)-th connection: 20 or 21 of them
                    "{}/{}".format(sum(r["checked_alive"] for r in rs),
                                   sum(len(range(0, r["opened"], max(1, r["opened"] // 20))) for r in rs)),
                    rs[0].get("peer_issuer") or "–"))
            L.append("")
        if hosts:
            L.append("### F: first connection to new host names (bench/tunnels.py hosts)")
            L.append("")
            L.append("Time from TCP connect to the end of the first response on a new connection "
                     "(CONNECT + TLS + `GET /v1/models`), for a host name never seen (a leaf certificate "
                     "is minted) and, alternately, for a host whose leaf is cached. A probe connection "
                     "sends keep-alive requests back to back meanwhile: its latency shows whether "
                     "minting holds up the event loop. Medians of the repeats.")
            L.append("")
            L.append("Handshake = CONNECT sent → TLS handshake with the proxy done (waits for the leaf); "
                     "first response additionally includes the proxy's first upstream connection to "
                     "that host name (TCP + TLS to the fake upstream), which any proxy pays.")
            L.append("")
            L.append("| target | new hosts | handshake new / cached p50 ms | **added by minting p50 ms** | "
                     "first response new p50 / p99 ms | first response cached p50 / p99 ms | "
                     "probe idle p50 / max ms | probe during p50 / p99 / max ms |")
            L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for t in ORDER:
                if t not in hosts:
                    continue
                rs = hosts[t]
                m = lambda k: med([r[k] for r in rs if r.get(k) is not None])
                L.append("| {} | {} | {} / {} | {} | {} / {} | {} / {} | {} / {} | {} / {} / {} |".format(
                    NAMES.get(t, t), med([r["hosts"] for r in rs]),
                    fmt(m("new_host_handshake_p50_ms"), 2), fmt(m("cached_host_handshake_p50_ms"), 2),
                    fmt(m("minting_added_p50_ms"), 2),
                    fmt(m("new_host_p50_ms"), 2), fmt(m("new_host_p99_ms"), 2),
                    fmt(m("cached_host_p50_ms"), 2), fmt(m("cached_host_p99_ms"), 2),
                    fmt(m("probe_idle_p50_ms"), 2),
                    fmt(m("probe_idle_max_ms"), 2), fmt(m("probe_during_p50_ms"), 2),
                    fmt(m("probe_during_p99_ms"), 2), fmt(m("probe_during_max_ms"), 2)))
            L.append("")

    if "llm_before" in targets:
        before_after(L, info, keys, metric, per_rep_ratio, a)

    text = "\n".join(L) + "\n"
    with open(a.out, "w") as f:
        f.write(text)

    # gnuplot data: CPU µs/request in scenario A, one row per proxy, one column per concurrency
    conc = sorted(k[1] for k in keys if k[0] == "A")
    with open(a.plot_data, "w") as f:
        f.write("target " + " ".join(f'"c={c}"' for c in conc) + "\n")
        for t in targets:
            if t == "direct":
                continue
            vals = [med(metric(("A", c), t, "cpu_us_per_req")) for c in conc]
            label = NAMES.get(t, t).split(" (")[0]
            f.write(f'"{label}" ' + " ".join("NaN" if v is None else f"{v:.1f}" for v in vals) + "\n")


def blind_tunnels(L, keys, targets, metric, per_rep_ratio, scen_name):
    """llm_proxy relaying every CONNECT blind (--ignore-hosts .) against tinyproxy's tunnel."""
    L.append("### Blind tunnels: llm_tunnel vs tinyproxy (per repeat, then median)")
    L.append("")
    L.append("Both relay the client's TLS to the upstream through a CONNECT tunnel without reading "
             "it; ratios are taken within each repeat (the targets ran back to back) and their median "
             "shown. Target of issue 12: llm_tunnel's CPU per request ≤ tinyproxy's.")
    L.append("")
    simple = "llm_simple" in targets
    L.append("| scenario | conc | CPU µs/req llm_tunnel | CPU µs/req tinyproxy | **CPU llm_tunnel ÷ tinyproxy** | "
             "req/s llm_tunnel ÷ tinyproxy | p50 added vs direct: llm_tunnel / tinyproxy ms |"
             + (" CPU llm_tunnel ÷ llm_simple (MITM) |" if simple else ""))
    L.append("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if simple else ""))
    for key in keys:
        d50 = med(metric(key, "direct", "p50_ms"))
        t50 = med(metric(key, "llm_tunnel", "p50_ms"))
        p50 = med(metric(key, "tinyproxy", "p50_ms"))
        add = "{} / {}".format(fmt(None if d50 is None or t50 is None else t50 - d50, 2),
                               fmt(None if d50 is None or p50 is None else p50 - d50, 2))
        row = "| {} | {} | {} | {} | {} | {} | {} |".format(
            scen_name.get(key[0], key[0]), key[1],
            fmt(med(metric(key, "llm_tunnel", "cpu_us_per_req")), 1) + spread(metric(key, "llm_tunnel", "cpu_us_per_req"), 1),
            fmt(med(metric(key, "tinyproxy", "cpu_us_per_req")), 1) + spread(metric(key, "tinyproxy", "cpu_us_per_req"), 1),
            fmt(per_rep_ratio(key, "llm_tunnel", "tinyproxy", "cpu_us_per_req"), 2, "×"),
            fmt(per_rep_ratio(key, "llm_tunnel", "tinyproxy", "rps"), 2, "×"), add)
        if simple:
            row += " {} |".format(fmt(per_rep_ratio(key, "llm_tunnel", "llm_simple", "cpu_us_per_req"), 2, "×"))
        L.append(row)
    L.append("")
    if "llm_tunnel_before" in targets:
        L.append("The earlier version's tunnel (llm_tunnel_before, BENCH_BEFORE_BIN) in the same run:")
        L.append("")
        L.append("| scenario | conc | CPU µs/req llm_tunnel_before | **CPU llm_tunnel_before ÷ tinyproxy** | "
                 "**CPU llm_tunnel ÷ llm_tunnel_before** |")
        L.append("|---|---:|---:|---:|---:|")
        for key in keys:
            L.append("| {} | {} | {} | {} | {} |".format(
                scen_name.get(key[0], key[0]), key[1],
                fmt(med(metric(key, "llm_tunnel_before", "cpu_us_per_req")), 1)
                + spread(metric(key, "llm_tunnel_before", "cpu_us_per_req"), 1),
                fmt(per_rep_ratio(key, "llm_tunnel_before", "tinyproxy", "cpu_us_per_req"), 2, "×"),
                fmt(per_rep_ratio(key, "llm_tunnel", "llm_tunnel_before", "cpu_us_per_req"), 2, "×")))
        L.append("")


def before_after(L, info, keys, metric, per_rep_ratio, a):
    """The earlier version (llm_before) against this one (llm_simple), measured in one run."""
    L.append("### Before / after (the same run)")
    L.append("")
    L.append(f"before: `{info.get('llm_before', '?')}`; after: `{info.get('llm_proxy', '?')}` "
             f"(git {info.get('llm_proxy_git', '?')}). Ratios are after ÷ before, per repeat, then median.")
    L.append("")
    L.append("| measure | before | after | after ÷ before |")
    L.append("|---|---:|---:|---:|")
    for key in keys:
        if key[0] != "A":
            continue
        b = med(metric(key, "llm_before", "cpu_us_per_req"))
        n = med(metric(key, "llm_simple", "cpu_us_per_req"))
        L.append("| A c={} proxy CPU µs/req | {} | {} | {} |".format(
            key[1], fmt(b, 1), fmt(n, 1),
            fmt(per_rep_ratio(key, "llm_simple", "llm_before", "cpu_us_per_req"), 3)))
    if a.sse:
        sse = [r for r in read_tsv(a.sse)]
        b = med([num(r["event_lat_ms_p50"]) for r in sse if r["target"] == "llm_before"])
        n = med([num(r["event_lat_ms_p50"]) for r in sse if r["target"] == "llm_simple"])
        L.append("| C SSE event latency p50 ms | {} | {} | {} |".format(
            fmt(b, 3), fmt(n, 3), fmt(ratio(n, b), 3)))
    if a.tunnels:
        idle = defaultdict(list)
        with open(a.tunnels) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    if r.get("mode") == "idle":
                        idle[r["target"]].append(r["kib_per_connection"])
        b, n = med(idle.get("llm_before", [])), med(idle.get("llm_simple", []))
        L.append("| D idle connection RSS KiB | {} | {} | {} |".format(
            fmt(b, 1), fmt(n, 1), fmt(ratio(n, b), 3)))
    L.append("")


if __name__ == "__main__":
    main()
