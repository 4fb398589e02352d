#!/usr/bin/env python3
"""Plots docs/bench/results.json: time until all N objects are Ready, for the operator, the
bound N/Q, and a sequential SDK loop (the baseline), against N."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path: str, png_path: str) -> None:
    with open(results_path) as f:
        runs = sorted(json.load(f), key=lambda r: r["n"])
    n = [r["n"] for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(n, [r["seconds"] for r in runs], "o-", label="operator: all Ready")
    ax.plot(n, [r["bound_seconds"] for r in runs], "--", label="bound N/Q")
    ax.plot(n, [r["baseline_seconds"] for r in runs], "s-", label="sequential SDK loop")
    ax.set_xlabel("partner event sources (N)")
    ax.set_ylabel("seconds")
    ax.set_title(f"Time to create N sources, Q = {runs[0]['q']:g} requests/s, 30 ms latency")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
