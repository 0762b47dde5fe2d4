#!/usr/bin/env python3
"""Rewrite src/llm/default_prices.json, llm_proxy's built-in price table, from a genai-prices
v2 data.json (https://github.com/pydantic/genai-prices, prices/new_data/v2/data.json, MIT).

usage: src/llm/update_default_prices.py DATA_JSON --checked YYYY-MM-DD [--out FILE]

Keeps the providers openai, anthropic and google with their models, match rules and prices,
drops the usage extractors (llm_proxy parses usage itself), and stamps every model with
"prices_checked": the date the prices were checked against the source. Review the diff, update
src/llm/default_prices.md (source commit and date), rebuild."""
import argparse
import datetime
import json
import os

KEEP = ("openai", "anthropic", "google")
PROVIDER_FIELDS = ("id", "name", "pricing_urls", "api_pattern", "description", "price_comments",
                   "model_match", "provider_match", "fallback_model_providers")
MODEL_FIELDS = ("id", "name", "description", "match", "context_window", "price_comments",
                "deprecated")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_json")
    ap.add_argument("--checked", required=True, help="date the prices were checked, YYYY-MM-DD")
    ap.add_argument("--out", default=os.path.join(here, "..", "src", "llm", "default_prices.json"))
    a = ap.parse_args()
    datetime.date.fromisoformat(a.checked)
    with open(a.data_json) as f:
        data = json.load(f)
    out = []
    for p in data:
        if p["id"] not in KEEP:
            continue
        q = {k: p[k] for k in PROVIDER_FIELDS if k in p}
        q["fallback_model_providers"] = [x for x in p.get("fallback_model_providers", []) if x in KEEP]
        if not q["fallback_model_providers"]:
            del q["fallback_model_providers"]
        q["models"] = []
        for m in p["models"]:
            n = {k: m[k] for k in MODEL_FIELDS if k in m}
            n["prices"] = m["prices"]
            n["prices_checked"] = a.checked
            q["models"].append(n)
        out.append(q)
    missing = set(KEEP) - {p["id"] for p in out}
    if missing:
        raise SystemExit("providers missing from %s: %s" % (a.data_json, ", ".join(sorted(missing))))
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("%s: %d providers, %d models" % (a.out, len(out), sum(len(p["models"]) for p in out)))


if __name__ == "__main__":
    main()
