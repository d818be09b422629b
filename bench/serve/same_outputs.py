"""Counts the requests whose generated text is the same in two `bench serve --out` files (same dataset and seed),
e.g. a run with the prefix cache and one without: python3 bench/serve/same_outputs.py A.json B.json"""
import json
import sys


def outputs(path):
    return {r["index"]: r.get("output") for r in json.load(open(path))["runs"][0]["requests"]}


a, b = outputs(sys.argv[1]), outputs(sys.argv[2])
same = sum(1 for i, text in a.items() if text is not None and text == b.get(i))
print(f"same output: {same} of {len(a)} requests ({sys.argv[1]} vs {sys.argv[2]})")
for i, text in sorted(a.items()):
    if text != b.get(i):
        print(f"  request {i} differs: {text!r:.80} vs {b.get(i)!r:.80}")
