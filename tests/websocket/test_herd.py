"""The reconnect herd in virtual time, and its fidelity to the live client on the flaky feed after a restart."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from ws_kit import SUBSCRIBE, resume_after, seq_of

from integration_kit.errors import ConfigurationError
from integration_kit.events import Recorder
from integration_kit.sim.ws_herd import HerdScenario, client_rng, simulate_herd, websockets_delays
from integration_kit.sim.ws_upstream import FeedScript, FlakyFeed
from integration_kit.websocket import ReconnectPolicy, ResilientWebSocket, WebSocketConfig
from integration_kit.websocket.events import WsConnected

NO_JITTER = ReconnectPolicy(first_delay=0.0, jitter="none")


def test_a_run_is_deterministic_for_a_seed() -> None:
    scenario = HerdScenario(clients=300)
    assert simulate_herd(scenario, seed=3) == simulate_herd(scenario, seed=3)
    assert simulate_herd(scenario, seed=3) != simulate_herd(scenario, seed=4)


def test_without_jitter_every_client_comes_back_in_the_same_second() -> None:
    result = simulate_herd(HerdScenario(clients=1000, accept_rate=None), "kit", NO_JITTER)
    assert result.peak == 1000  # the herd: all at once when the server is back
    assert all(math.isfinite(d) for d in result.down)


def test_the_kits_jitter_spreads_the_herd_below_no_jitter_and_the_naive_loop() -> None:
    scenario = HerdScenario(clients=1000)
    kit = simulate_herd(scenario, "kit")
    assert kit.peak < simulate_herd(scenario, "kit", NO_JITTER).peak
    assert kit.peak < simulate_herd(scenario, "naive").peak
    assert kit.gave_up == 0
    assert all(math.isfinite(d) for d in kit.down)
    assert kit.lost == (0,) * 1000  # resumed


def test_without_resume_the_messages_sent_while_away_are_lost() -> None:
    result = simulate_herd(HerdScenario(clients=50, resume=False, rate=10.0), "kit")
    assert result.lost == tuple(int(d * 10.0) for d in result.down)
    assert sum(result.lost) > 0


def test_the_websockets_iterator_reconnects_at_once_then_backs_off_from_a_random_delay() -> None:
    result = simulate_herd(HerdScenario(clients=200, downtime=1.0, accept_rate=None), "websockets")
    assert result.refused["connect_error"] >= 200  # every client tried while the server was down
    delays = websockets_delays(random.Random(0))
    first, second, third = next(delays), next(delays), next(delays)
    assert 0 <= first <= 5.0
    assert (second, third) == (3.1, pytest.approx(3.1 * 1.618))


def test_retry_after_on_503_is_honoured_by_the_kit() -> None:
    scenario = HerdScenario(clients=400, downtime=0.0, accept_rate=100, retry_after=3.0)
    result = simulate_herd(scenario, "kit", ReconnectPolicy(first_delay=0.0, jitter="none"))
    assert result.per_second[1:3] == (0, 0)  # the refused waited the 3 s asked
    assert result.per_second[3] > 0


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"clients": 0}, "clients"),
        ({"rate": 0}, "rate"),
        ({"downtime": -1}, "downtime"),
        ({"accept_rate": 0}, "accept_rate"),
    ],
)
def test_a_bad_scenario_names_its_field(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HerdScenario(**settings)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_unknown_strategy_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        simulate_herd(HerdScenario(clients=1), "retry-forever")  # type: ignore[arg-type]
    assert caught.value.field == "strategy"


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_simulation_and_live_agree_on_a_restart_of_ten_clients() -> None:
    """Ten live clients of the flaky feed see a 1012 restart; the simulator plays the same scenario with the same
    random stream per client. They agree on the handshakes (one per client), the messages lost with resume (none)
    and, client by client, the time away (the same jittered wait; live adds the handshake's real latency)."""
    clients = 10
    policy = ReconnectPolicy(first_delay=0.6, base_delay=0.1)
    recorders = [Recorder() for _ in range(clients)]
    with FlakyFeed(FeedScript(rate=100)) as feed:
        config = WebSocketConfig(
            url=feed.url, subscribe=(SUBSCRIBE,), sequence="seq", resume=resume_after, reconnect=policy
        )
        warmed = asyncio.Semaphore(0)

        async def client(index: int) -> list[int]:
            seqs: list[int] = []
            ws = ResilientWebSocket(config, hooks=[recorders[index]], rng=client_rng(7, index))
            async with ws:
                async for message in ws:
                    seqs.append(seq_of(message))
                    if len(seqs) == 5:
                        warmed.release()
                    if len(recorders[index].of(WsConnected)) == 2 and len(seqs) >= 20:
                        break
            return seqs

        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        for _ in range(clients):
            await warmed.acquire()
        before = len(feed.stats().handshakes)
        feed.restart()
        streams = await asyncio.gather(*tasks)
        after = len(feed.stats().handshakes) - before
    live_down = [[e.down_for for e in r.of(WsConnected) if isinstance(e, WsConnected)][1] for r in recorders]
    for seqs in streams:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost, nothing twice
    sim = simulate_herd(
        HerdScenario(clients=clients, downtime=0.0, accept_rate=None, rate=100.0), "kit", policy, seed=7
    )
    assert after == sim.handshakes == clients
    assert sim.lost == (0,) * clients
    for live, simulated in zip(live_down, sim.down, strict=True):
        assert simulated <= live < simulated + 0.25, (live_down, sim.down)


def test_only_the_kit_resumes() -> None:
    scenario = HerdScenario(clients=100, resume=True)
    assert sum(simulate_herd(scenario, "kit").lost) == 0
    assert sum(simulate_herd(scenario, "websockets").lost) > 0
    assert sum(simulate_herd(scenario, "naive").lost) > 0
