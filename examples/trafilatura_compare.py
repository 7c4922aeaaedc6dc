#!/usr/bin/env python3
"""Scores trafilatura on the same pages, with the same metrics and the same halves as
`cargo run --release --example evaluate`, so the two can be compared line by line.

    pip install trafilatura==2.3.1 lxml_html_clean
    python3 examples/trafilatura_compare.py [CORPUS_DIR]   (default ../shared/corpus)
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

import trafilatura

WORD = re.compile(r"\w+")


def half(stem: str) -> str:
    """"A" or "B" by the FNV-1a hash of the file name's stem, as `evaluate` splits."""
    h = 0xCBF29CE484222325
    for b in stem.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "A" if h % 2 == 0 else "B"


def pages(directory: Path):
    for html in sorted(directory.rglob("*.html")):
        meta = html.with_suffix(".json")
        if meta.exists():
            yield html, json.loads(meta.read_text(encoding="utf-8"))


def extract(html: Path, url: str) -> str:
    text = trafilatura.extract(html.read_bytes(), url=url or None, favor_precision=False)
    return text or ""


def shingles(text: str) -> Counter:
    tokens = WORD.findall(text)
    if not tokens:
        return Counter()
    if len(tokens) < 4:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def score(predicted: str, truth: str):
    p, t = shingles(predicted), shingles(truth)
    tp = sum((p & t).values())
    fp = sum(p.values()) - tp
    fn = sum(t.values()) - tp
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    total = tp + fp + fn
    tp, fp, fn = tp / total, fp / total, fn / total
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    return precision, recall


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def mean(v):
    return sum(v) / len(v) if v else 0.0


def zyte(directory: Path):
    by_half = {"all": ([], []), "A": ([], []), "B": ([], [])}
    for html, expected in pages(directory):
        p, r = score(extract(html, expected.get("url", "")), expected.get("articleBody", ""))
        for key in ("all", half(html.stem)):
            if p is not None:
                by_half[key][0].append(p)
            if r is not None:
                by_half[key][1].append(r)
    for key, (ps, rs) in by_half.items():
        pm, rm = mean(ps), mean(rs)
        print(f"zyte {key:<3} ({len(rs)} pages): precision {pm:.3f} recall {rm:.3f} F1 {f1(pm, rm):.3f}")


def squash(s: str) -> str:
    return " ".join(s.split())


def trafilatura_eval(directory: Path):
    counts = {k: [0, 0, 0, 0] for k in ("all", "A", "B")}
    for html, expected in pages(directory):
        text = squash(extract(html, expected.get("url", "")))
        for key in ("all", half(html.stem)):
            c = counts[key]
            for s in expected.get("with", []):
                c[1] += 1
                c[0] += squash(s) in text
            for s in expected.get("without", []):
                c[3] += 1
                c[2] += squash(s) not in text
    for key, (found, with_total, absent, without_total) in counts.items():
        r = found / max(with_total, 1)
        p = absent / max(without_total, 1)
        print(f"trafilatura-eval {key:<3}: precision {p:.3f} recall {r:.3f} F1 {f1(p, r):.3f}")


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
    zyte(corpus / "benchmark/zyte-article-extraction-benchmark")
    trafilatura_eval(corpus / "benchmark/trafilatura-eval")


if __name__ == "__main__":
    main()
