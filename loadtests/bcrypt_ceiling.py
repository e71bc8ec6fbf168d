"""The most logins per second these cores can do: bcrypt checks per second on N threads.

A login is one bcrypt check of the stored hash (cost 10, as the auth service stores them), so no
login benchmark can beat this figure on the same cores; the goal is at least 90% of it.
pyca `bcrypt` releases the GIL, so threads use every core.

    .venv/bin/python loadtests/bcrypt_ceiling.py --threads 1 2 --seconds 5
"""

import argparse
import os
import threading
import time

import bcrypt


def checks_per_second(threads: int, seconds: float, rounds: int) -> float:
    """Every thread checks the right password against one cost-`rounds` hash until time is up."""
    password = b"BenchPass123!"
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def work(slot: int) -> None:
        while time.perf_counter() < deadline:
            if not bcrypt.checkpw(password, hashed):
                raise AssertionError("bcrypt check failed")
            counts[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=sorted({1, cores}),
        help="thread counts to measure (default: 1 and the core count)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=10, help="bcrypt cost (auth: 10)")
    args = parser.parse_args()
    print(f"bcrypt cost {args.rounds} on {cores} cores ({args.seconds:.0f} s per run)")
    for threads in args.threads:
        rate = checks_per_second(threads, args.seconds, args.rounds)
        print(
            f"  {threads:>3} threads: {rate:7.1f} checks/s  ({1000 / rate * threads:.0f} ms "
            f"per check per thread)",
            flush=True,
        )


if __name__ == "__main__":
    main()
