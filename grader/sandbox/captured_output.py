"""The bounded capture of a sandbox process's output (the student's prints, a zygote's traces)."""

from __future__ import annotations

import threading

OUTPUT_BOUND = 64 * 1024  # bytes of the student's stdout/stderr kept for the report


class CapturedOutput:
    """Drains a pipe on a thread, keeping the first and last OUTPUT_BOUND/2 bytes, so that a
    flood of prints can neither block the server nor fill the grader's memory."""

    def __init__(self, pipe, bound: int = OUTPUT_BOUND) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0
        self._half = bound // 2
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe) -> None:
        while chunk := pipe.read1(1 << 16) if hasattr(pipe, "read1") else pipe.read(1 << 16):
            with self._lock:
                room = self._half - len(self._head)
                self._head += chunk[:max(room, 0)]
                rest = chunk[max(room, 0):]
                self._tail += rest
                if len(self._tail) > self._half:
                    self._dropped += len(self._tail) - self._half
                    del self._tail[:len(self._tail) - self._half]

    def text(self, wait: float = 0.0) -> str:
        self._thread.join(timeout=wait)
        with self._lock:
            head = self._head.decode("utf-8", "replace")
            tail = self._tail.decode("utf-8", "replace")
            gap = f"\n[... {self._dropped} bytes of output left out ...]\n" if self._dropped else ""
        return head + gap + tail

    @property
    def dropped(self) -> int:
        return self._dropped
