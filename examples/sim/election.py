"""Leader election on a lossy network, its safety checked over many seeds.

Three nodes elect a leader the way Raft does: a follower that hears no heartbeat for
a random 150-600 ms becomes a candidate in the next term, votes for itself and asks
the others; a node grants one vote per term; a candidate with a majority leads and
sends heartbeats. The messages are UDP datagrams (create_datagram_endpoint), on a
network that loses 5% of them and delays each by 5-30 ms. A chaos client cuts the
leader off from the others a few times, so that new elections are held.

Safety: never two leaders in one term. The buggy node, as a candidate, counts its
own vote without recording it, and so may also vote for a rival candidate of the
same term; that breaks safety only when two elections of one term overlap and the
third node's vote goes the right way, which only some timings (some seeds)
produce. The sweep finds the first such seed, the run with that seed is printed,
and the correct node then passes every seed.

    python examples/sim/election.py            # sweep, replay the failing seed, check the fix
    python examples/sim/election.py replay N   # replay seed N with the buggy node
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

from looplet.sim import SeedFailure, Simulation, sweep

NODES = ("n1", "n2", "n3")
PORT = 9000
HEARTBEAT = 0.05


class Node(asyncio.DatagramProtocol):
    """One node's election state and its messages."""

    def __init__(self, name: str, buggy: bool, leaders: list[tuple[int, str, float]], trace: bool) -> None:
        self.name = name
        self.buggy = buggy
        self.leaders = leaders
        self.trace = trace
        self.term = 0
        self.voted_for: str | None = None
        self.role = "follower"
        self.votes: set[str] = set()
        self.transport: Any = None
        self.loop = asyncio.get_running_loop()
        self.timer: asyncio.TimerHandle | None = None
        self.heartbeat: asyncio.TimerHandle | None = None

    def log(self, message: str) -> None:
        if self.trace:
            print(f"{self.loop.time():7.3f}  {self.name}  term {self.term}: {message}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.reset_election_timer()

    def reset_election_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(random.uniform(0.15, 0.60), self.start_election)

    def send(self, to: str, **message: Any) -> None:
        self.transport.sendto(json.dumps({"from": self.name, "term": self.term, **message}).encode(), (to, PORT))

    def broadcast(self, **message: Any) -> None:
        for peer in NODES:
            if peer != self.name:
                self.send(peer, **message)

    def start_election(self) -> None:
        self.term += 1
        self.role = "candidate"
        # The bug: a buggy candidate counts its own vote but does not record it, so it
        # may still vote for another candidate of the same term.
        self.voted_for = None if self.buggy else self.name
        self.votes = {self.name}
        self.log("candidate")
        self.broadcast(type="request_vote")
        self.reset_election_timer()

    def become_leader(self) -> None:
        self.role = "leader"
        self.log("LEADER")
        self.leaders.append((self.term, self.name, self.loop.time()))
        if self.timer is not None:
            self.timer.cancel()
        self.send_heartbeats()

    def send_heartbeats(self) -> None:
        if self.role == "leader":
            self.broadcast(type="heartbeat")
            self.heartbeat = self.loop.call_later(HEARTBEAT, self.send_heartbeats)

    def grants(self, term: int, candidate: str) -> bool:
        return term == self.term and self.voted_for in (None, candidate)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = json.loads(data)
        term, sender = message["term"], message["from"]
        if term > self.term:
            self.term, self.voted_for, self.role = term, None, "follower"
            self.reset_election_timer()
        kind = message["type"]
        if kind == "request_vote":
            granted = self.grants(term, sender)
            if granted:
                self.voted_for = sender
                self.reset_election_timer()
                self.log(f"votes for {sender}")
            self.send(sender, type="vote", granted=granted)
        elif kind == "vote" and self.role == "candidate" and term == self.term and message["granted"]:
            self.votes.add(sender)
            if len(self.votes) * 2 > len(NODES):
                self.become_leader()
        elif kind == "heartbeat" and term == self.term:
            if self.role != "follower":
                self.log(f"follows {sender}")
            self.role = "follower"
            self.reset_election_timer()


def simulate(seed: int, *, buggy: bool, trace: bool = False) -> list[tuple[int, str, float]]:
    """Run the cluster with one seed; return who led in which term, and when."""
    leaders: list[tuple[int, str, float]] = []
    sim = Simulation(seed, latency=(0.005, 0.030), loss=0.05, duration=60.0)

    def node(name: str) -> Any:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            await loop.create_datagram_endpoint(lambda: Node(name, buggy, leaders, trace), local_addr=("0.0.0.0", PORT))
            await loop.create_future()

        return main

    for name in NODES:
        sim.host(name, node(name))

    async def chaos() -> None:
        for _ in range(3):
            await asyncio.sleep(2)
            # The most recently elected node (it may have stepped down since).
            leader = leaders[-1][1] if leaders else random.choice(NODES)
            others = [n for n in NODES if n != leader]
            if trace:
                print(f"{asyncio.get_running_loop().time():7.3f}  chaos  isolate {leader}")
            for other in others:
                sim.partition(leader, other)
            await asyncio.sleep(1)
            for other in others:
                sim.repair(leader, other)

    sim.client("chaos", chaos)
    sim.run()
    return leaders


def check_safety(leaders: list[tuple[int, str, float]]) -> None:
    by_term: dict[int, set[str]] = {}
    for term, name, _ in leaders:
        by_term.setdefault(term, set()).add(name)
    for term, names in sorted(by_term.items()):
        assert len(names) == 1, f"term {term} has two leaders: {sorted(names)}"


def main() -> None:
    if sys.argv[1:2] == ["replay"]:
        leaders = simulate(int(sys.argv[2]), buggy=True, trace=True)
        print("leaders:", ", ".join(f"{name} (term {term}, {when:.3f} s)" for term, name, when in leaders))
        return
    seeds = range(100)
    try:
        sweep(lambda seed: check_safety(simulate(seed, buggy=True)), seeds)
    except SeedFailure as failure:
        print(f"buggy node: {failure}")
        print(f"replaying seed {failure.seed}:")
        simulate(failure.seed, buggy=True, trace=True)
    else:
        print("buggy node: no seed of 100 found the bug")
    failing = [seed for seed in seeds if not is_safe(simulate(seed, buggy=True))]
    print(f"buggy node: {len(failing)} of {len(seeds)} seeds break safety: {failing}")
    sweep(lambda seed: check_safety(simulate(seed, buggy=False)), seeds)
    print(f"correct node: safe with all {len(seeds)} seeds")


def is_safe(leaders: list[tuple[int, str, float]]) -> bool:
    try:
        check_safety(leaders)
    except AssertionError:
        return False
    return True


if __name__ == "__main__":
    main()
