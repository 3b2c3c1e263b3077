"""Chain relay node: forwards every input to the output of the same name, unchanged.

With alternating tracing each latency message is received and forwarded with tracing as its
class (traced or not), as the sender sent it (see ``_dora_api.TracingSwitch``).
"""

from _dora_api import TracingSwitch, make_node, protocol_metadata
from common import TRACED, Kind, alternating


def main() -> None:
    node = make_node()
    switch = TracingSwitch(node) if alternating() else None
    while True:
        if switch is not None:
            switch.before_next()
        event = node.next()
        if event is None or event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        md = event["metadata"]
        if switch is not None:
            switch.matched(md)  # a wrong guess: the message is forwarded as its class all the same
            traced = md["kind"] != Kind.LAT or bool(md["n"] & TRACED)
            if traced != switch.on:
                switch.set(traced)
        node.send_output(event["id"], event["value"], protocol_metadata(md))


if __name__ == "__main__":
    main()
