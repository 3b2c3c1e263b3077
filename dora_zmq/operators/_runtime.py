"""The operator runtime: one node process hosting one or more ``class Operator`` instances.

Events for the node's inputs (``op_id/input``) are routed to the operator that owns them with
the operator-local input id, as dora does; each operator's ``send_output("bbox", ...)`` goes
out as the node output ``op_id/bbox``. Operators run one after another on the main thread.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .._errors import DoraZmqError
from ..descriptor import OperatorSpec
from ..node import EVENT_KIND, Event, EventType, Node, StopReason
from ._loader import load_operator_module
from ._status import DoraStatus

__all__ = ["OperatorFailed", "OperatorRuntime", "run_runtime"]

log = logging.getLogger(__name__)

SendOutput = Callable[..., None]


class OperatorFailed(DoraZmqError):
    """An operator raised; the message names the operator and node and holds the traceback."""


@dataclass(slots=True)
class _Hosted:
    spec: OperatorSpec
    instance: Any
    send_output: SendOutput
    legacy: bool  # only on_input (the older dora operator API)
    done: bool = False
    inputs: set[str] = field(default_factory=set)


class OperatorRuntime:
    """Hosts the operators of one runtime node on top of a :class:`Node`."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._ops: dict[str, _Hosted] = {}
        spec = node.descriptor.node(node.id)
        for op_spec in spec.operators:
            self._ops[op_spec.id] = self._load(op_spec)

    def _load(self, op_spec: OperatorSpec) -> _Hosted:
        assert op_spec.python is not None
        module = load_operator_module(op_spec.python, op_spec.id, self.node.id)
        try:
            instance = module.Operator()
        except Exception as exc:
            raise self._failure(op_spec.id, "__init__", exc) from exc
        # dora sets this attribute on operator instances.
        instance.dataflow_descriptor = self.node.dataflow_descriptor()
        has_event = callable(getattr(instance, "on_event", None))
        if not has_event and not callable(getattr(instance, "on_input", None)):
            raise OperatorFailed(f"operator '{op_spec.id}' of node '{self.node.id}' has neither on_event nor on_input")
        prefix = op_spec.id + "/"
        node = self.node

        def send_output(output_id: str, data: Any, metadata: Mapping[str, Any] | None = None) -> None:
            node.send_output(prefix + output_id, data, metadata)

        return _Hosted(op_spec, instance, send_output, legacy=not has_event, inputs=set(op_spec.inputs))

    def run(self) -> None:
        """Deliver events until every operator is done or the stream ends.

        Raises:
            OperatorFailed: an operator raised (the dataflow reports this node failed).
        """
        for event in self.node:
            if self._dispatch(event) or all(h.done for h in self._ops.values()):
                break

    def _dispatch(self, event: Event) -> bool:
        """Route one event; True when the runtime should stop."""
        etype = event["type"]
        if etype == EventType.STOP:
            for hosted in self._live():
                self._call(hosted, Event(event))
            return True
        if (etype == EventType.ERROR and event.get("id") is None) or etype == EventType.NODE_RESTARTED:
            for hosted in self._live():
                self._call(hosted, Event(event))
            return False
        if etype == EventType.NODE_FAILED:
            return self._upstream_failed(event)
        op_id, _, local = str(event.get("id", "")).partition("/")
        target = self._ops.get(op_id)
        if target is None or target.done:
            return False
        local_event = Event(event)
        local_event["id"] = local
        stop = self._call(target, local_event)
        if etype == EventType.INPUT_CLOSED:
            target.inputs.discard(local)
            if not target.inputs and not target.done:
                # Like a node whose inputs all closed: the operator is finished. Closing its
                # outputs lets downstream operators (even in this same runtime) finish too.
                self._call(
                    target,
                    Event(
                        type=EventType.STOP, id=StopReason.ALL_INPUTS_CLOSED, kind=EVENT_KIND, value=None, metadata={}
                    ),
                )
                self._finish(target)
        return stop

    def _upstream_failed(self, event: Event) -> bool:
        """NODE_FAILED reaches each operator reading the failed node as an ERROR per input
        (operators know the five dora event types), with the input's operator-local id."""
        stop = False
        affected = (event.get("value") or {}).get("affected_input_ids", [])
        for full_id in affected:
            op_id, _, local = str(full_id).partition("/")
            hosted = self._ops.get(op_id)
            if hosted is not None and not hosted.done:
                local_event = Event(event)
                local_event.update(type=EventType.ERROR, id=local)
                stop = self._call(hosted, local_event) or stop
        return stop

    def _call(self, hosted: _Hosted, event: Event) -> bool:
        try:
            if hosted.legacy:
                if event["type"] != EventType.INPUT:
                    return False
                status = hosted.instance.on_input(event, hosted.send_output)
            else:
                status = hosted.instance.on_event(event, hosted.send_output)
        except Exception as exc:
            method = "on_input" if hosted.legacy else "on_event"
            raise self._failure(hosted.spec.id, method, exc) from exc
        return self._apply(hosted, status)

    def _apply(self, hosted: _Hosted, status: Any) -> bool:
        try:
            status = DoraStatus(int(status if status is not None else 0))
        except (TypeError, ValueError):
            log.warning("operator %s returned %r, not a DoraStatus; treating as CONTINUE", hosted.spec.id, status)
            return False
        if status is DoraStatus.STOP:
            log.info("operator %s of node %s returned STOP", hosted.spec.id, self.node.id)
            self._finish(hosted)
        elif status is DoraStatus.STOP_ALL:
            self._finish(hosted)
            self.node.request_dataflow_stop(f"operator '{hosted.spec.id}' returned STOP_ALL")
        return False

    def _finish(self, hosted: _Hosted) -> None:
        hosted.done = True
        for output in hosted.spec.outputs:
            self.node.close_output(f"{hosted.spec.id}/{output}")

    def _live(self) -> list[_Hosted]:
        return [h for h in self._ops.values() if not h.done]

    def _failure(self, op_id: str, method: str, exc: BaseException) -> OperatorFailed:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return OperatorFailed(f"operator '{op_id}' of node '{self.node.id}' raised in {method}: {exc!r}\n{tb}")


def run_runtime() -> None:
    """Entry point of a runtime node process (``python -m dora_zmq.operators``)."""
    node = Node()
    try:
        OperatorRuntime(node).run()
    except DoraZmqError as exc:
        node.close(error=str(exc).splitlines()[0])
        raise
    finally:
        node.close()
