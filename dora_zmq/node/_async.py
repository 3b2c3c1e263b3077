"""``await node.recv_async()`` and ``async for event in node``: events without blocking a loop.

``Node.next()`` blocks its thread, so the asyncio forms run it on one worker thread owned by
the node (one call at a time: events keep their order). A ``recv_async`` that is cancelled
(``asyncio.wait_for`` timing out, a task cancelled) cannot take back the ``next()`` call
already waiting in the worker; the event it returns is kept and is the result of the next
``recv_async``, so no event is lost to a cancellation.

Threading: ``recv_async`` is called from the event loop's thread; the worker thread only
runs ``next()``. ``_pending`` is touched by the loop's thread alone.

asyncio and the executor are imported by the first ``recv_async`` (a node that never awaits
does not load them; one that does has asyncio loaded already).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import concurrent.futures

__all__ = ["AsyncEvents"]


class AsyncEvents:
    """The asyncio face of one node's event stream."""

    def __init__(self, node_id: str, next_event: Callable[[float | None], Any]) -> None:
        self._next = next_event
        self._name = f"dora-zmq-async-{node_id}"
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future[Any] | None = None

    async def recv(self, timeout: float | None = None) -> Any:
        """The next event, None when the stream ended, an ERROR event after ``timeout`` seconds."""
        import asyncio
        import concurrent.futures

        pending = self._pending
        if pending is None:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=self._name)
            pending = self._pending = self._executor.submit(self._next, timeout)
        # shield: a cancelled caller leaves the call running; its event stays in _pending
        result = await asyncio.shield(asyncio.wrap_future(pending))
        self._pending = None
        return result

    def close(self) -> None:
        """Let the worker thread end once its current ``next()`` returns."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
