"""Chain relay node: forwards every input to the output of the same name, unchanged."""

from _dora_api import make_node, protocol_metadata


def main() -> None:
    node = make_node()
    for event in node:
        if event["type"] == "INPUT":
            node.send_output(event["id"], event["value"], protocol_metadata(event["metadata"]))
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
