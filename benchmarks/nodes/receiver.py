"""Benchmark receiver node: records latencies and bursts, writes the result JSON."""

from _dora_api import DoraReceiver, make_node
from common import Job, run_receiver


def main() -> None:
    job = Job.from_env()
    run_receiver(DoraReceiver(make_node()), job)


if __name__ == "__main__":
    main()
