"""Why a live WebSocket run reports the peak handshakes and does not judge them: the live estimator, in one run.

    PYTHONPATH=. .venv/bin/python bench/websocket_live_peak.py [--seeds 30]

A live playbook run has at most 20 real clients (``LIVE_CLIENTS``) and scales the busiest second they produce up to
the scenario's clients (1,000 for market-prices: each handshake counts 50). This script plays that estimator in
the simulator, with the same reconnect policy and the server's accept rate thinned the same way, over ``--seeds``
seeds, beside the peak of all 1,000 simulated clients. Printed per scenario: the 1,000-client peak (5 seeds), the
estimator's median, range and how often it exceeds the spec's bound. The estimator's spread (the maximum of small
counts, times 50) is what a live run would judge, so the bound is judged in simulate mode only.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from integration_kit.playbook.kinds.table import load_spec
from integration_kit.playbook.kinds.websocket.live import LIVE_CLIENTS
from integration_kit.sim.ws_herd import simulate_herd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--spec", default="market-prices")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    bound = spec.objectives.get("peak_handshakes", float("inf"))
    print(f"{'scenario':26} {'1,000 clients':>18} {'20 x scale median':>18} {'range':>10} {'above bound':>12}")
    for scenario in spec.scenarios:
        herd = scenario.herd
        full = [simulate_herd(herd, "kit", spec.reconnect, seed=s).peak for s in range(5)]
        clients = min(herd.clients, LIVE_CLIENTS)
        thinning = clients / herd.clients
        thin = replace(
            herd, clients=clients, accept_rate=None if herd.accept_rate is None else herd.accept_rate * thinning
        )
        estimates = [simulate_herd(thin, "kit", spec.reconnect, seed=s).peak / thinning for s in range(args.seeds)]
        above = sum(1 for e in estimates if e > bound)
        print(
            f"{scenario.name:26} {min(full):>8g}-{max(full):<9g} {statistics.median(estimates):>18g} "
            f"{min(estimates):>4g}-{max(estimates):<5g} {above:>5}/{args.seeds:<6}"
        )


if __name__ == "__main__":
    main()
