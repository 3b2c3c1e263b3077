"""Benchmark sender node (dora_zmq or dora-rs, see ``_dora_api``)."""

from _dora_api import DoraSender, make_node
from common import Job, run_sender


def main() -> None:
    job = Job.from_env()
    run_sender(DoraSender(make_node()), job)


if __name__ == "__main__":
    main()
