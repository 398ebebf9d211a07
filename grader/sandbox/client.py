"""SandboxedModel: the model protocol, answered by a server process that holds the student's code.

The grader never imports the submission: it sends pixel batches and reads back arrays, checks
their shapes, and turns every way the server can misbehave (an error, a crash, a timeout, a
flood of output, garbage on the channel) into a SubmissionError the student can act on.
"""

from __future__ import annotations

import math
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.fingerprint import FingerprintError, WeightsFingerprint
from grader.profile import HardwareProfile
from grader.protocol import ModelDescription, ModelProtocol, Objective
from grader.sandbox.captured_output import CapturedOutput
from grader.sandbox.isolation import Isolation, empty_snapshot, fill_snapshot, launch, remove_snapshot
from grader.sandbox.server_process import PopenServerProcess, ServerProcess
from grader.sandbox.requests import FINGERPRINT, LOAD, description_from, fingerprint_from, objective_message
from grader.sandbox.wire import ChannelClosed, Message, WireError, read_message, write_message
from grader.escape import clean_text
from grader.result import MESSAGE_LIMIT
from grader.submission.errors import SubmissionError
from grader.submission.folder import tree_bounds

if TYPE_CHECKING:
    from grader.sandbox.zygote import Zygote

STARTUP_SECONDS = 300
"""The most a server's start-up may take (usually 3-5 s of one core): a bound for a wedged machine,
not a limit of the student's (SandboxServer._await_start)."""


class SandboxServer:
    """One server process: started on an empty snapshot (possibly ahead of need:
    grader.sandbox.starter), handed its submission by `load`, spoken to one request at a time, and
    killed with its group."""

    def __init__(self, profile: HardwareProfile, isolation: Isolation, server_args: Iterable[str] = (),
                 zygote: Zygote | None = None) -> None:
        """Started by bwrap (or as a plain subprocess) on a snapshot of its own, or forked by `zygote`
        (grader.sandbox.zygote: ZygoteError when it cannot; `server_args` are then not used)."""
        self.profile = profile
        self._deadline = math.inf  # `load` sets it: the submission's time starts when it is handed over
        self._snapshot = empty_snapshot(zygote.snapshots if zygote is not None else None)
        try:
            self.process: ServerProcess = (
                zygote.spawn(self._snapshot, profile) if zygote is not None
                else PopenServerProcess(launch(self._snapshot, isolation, profile.limits.model_dump(),
                                               profile.model_dump(exclude={"limits"}), server_args)))
        except BaseException:
            remove_snapshot(self._snapshot)
            raise
        self.output = CapturedOutput(self.process.stderr)
        self.start_wait = 0.0
        """Seconds the submission waited for this server's start-up: in `load`, and in starting it when
        none had been started ahead (grader.sandbox.starter). The grader's work, not the submission's."""
        self._closed = False
        self._loaded = False

    @property
    def snapshot(self) -> Path:
        """The folder the server sees as its submission (empty until `load`)."""
        return self._snapshot

    def load(self, folder: Path, exclude: Iterable[Path] = ()) -> None:
        """Copy the submission in `folder` into the server's snapshot (leaving out `exclude`) and
        have the server load it. On any failure the server is closed and a SubmissionError says
        why: the tree refused (grader.sandbox.isolation.fill_snapshot), the server not started, the
        student's code failing to load, or the time limit for loading passing. The submission's
        limits count from the end of the server's start-up (`_await_start`): neither the time a
        server waited for its submission nor its imports are the submission's."""
        limits = self.profile.limits
        try:
            fill_snapshot(self._snapshot, Path(folder), tree_bounds(limits), exclude)
            self._await_start()
            self._deadline = time.monotonic() + limits.wall_seconds_per_submission
            self._loaded = True  # from here on the student's code runs: `close` lets it finish its output
            self._send(Message({"op": LOAD}), "loading the submission")
            self._expect_ok(self._receive(limits.wall_seconds_per_load, "loading the submission", "for loading"))
        except BaseException:
            self.close()
            raise

    def _await_start(self) -> None:
        """Wait for the server's start-up (bubblewrap, Python, torch and Lightning; the profile
        applied), done ahead or still going. No student code runs in it, so none of the submission's
        limits count it: on a loaded machine it can take many times its usual 3-5 s. A server that
        has not started within STARTUP_SECONDS is the grader's failure (stage `grader`, graded again
        on the next run), not a timeout of the student's."""
        waiting_since = time.monotonic()
        try:
            started = read_message(self.process.responses, waiting_since + STARTUP_SECONDS)
        except TimeoutError:
            self.kill()
            raise SubmissionError("grader", f"the sandbox did not start within {STARTUP_SECONDS} s (importing torch "
                                            "and Lightning, before any of the submission's code ran): the grading "
                                            "machine is overloaded or its Python environment is broken. This is not "
                                            "the submission's fault; grade it again") from None
        except WireError:
            raise self._died("starting the sandbox, before any of the submission's code ran") from None
        finally:
            self.start_wait += time.monotonic() - waiting_since
        self._expect_ok(started)

    def request(self, message: Message, what: str) -> Message:
        if self._closed:
            raise SubmissionError("request", "the model's server has already stopped")
        self._send(message, what)
        return self._expect_ok(self._receive(self.profile.limits.wall_seconds_per_request, what))

    def _send(self, message: Message, what: str) -> None:
        try:
            write_message(self.process.requests, message)
        except (BrokenPipeError, OSError):
            raise self._died(what) from None

    @staticmethod
    def _expect_ok(response: Message) -> Message:
        if not response.header.get("ok"):
            raise _error_of(response)
        return response

    def _receive(self, seconds: float, what: str, per: str = "per request") -> Message:
        """The next answer, within `seconds` from now and within the whole submission's time."""
        request_deadline = time.monotonic() + seconds
        try:
            return read_message(self.process.responses, min(request_deadline, self._deadline))
        except TimeoutError:
            self.kill()
            limits = self.profile.limits
            limit = (f"{per} ({seconds:g} s)" if request_deadline < self._deadline
                     else f"for the whole submission ({limits.wall_seconds_per_submission} s)")
            raise SubmissionError("timeout", f"the model did not answer within the time limit {limit} while {what}; "
                                             "look for an endless loop, sleep or a very slow forward (or, while "
                                             "loading, slow work at import or in the model's constructor)") from None
        except ChannelClosed:
            raise self._died(what) from None
        except WireError as error:
            # A live server that answers what is not a frame: the student's code wrote to the
            # grader's channel (or replaced the server's writer). Said as such, not as the SIGKILL
            # that stopping it would otherwise be reported as.
            self.kill()
            raise SubmissionError("request", f"the model's server answered with a malformed message while {what} "
                                             f"({error}); a submission's code must not write to the grader's "
                                             "channel or change how the sandbox answers") from None

    def _died(self, what: str) -> SubmissionError:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        self._closed = True
        if self.process.lost:
            return SubmissionError("grader", f"the sandbox lost the model's process while {what} (its zygote "
                                             "stopped, or the process could not be stopped in time). This is not "
                                             "the submission's fault; grade it again")
        tail = self.output.text(wait=1.0).strip().splitlines()[-3:]
        detail = f" Last output: {' | '.join(tail)[-400:]}" if tail else ""
        return SubmissionError("crash", f"the model's process {_exit_words(code, self.profile)} while {what}.{detail}")

    def kill(self) -> None:
        self.process.kill()
        self._closed = True

    def close(self) -> None:
        """Ask a loaded server to stop (it may flush what the student's code printed), then kill its
        group. A server that never loaded is killed at once: it may still be importing, and it has
        nothing of a student's to finish."""
        if self._loaded and not self._closed and self.process.poll() is None:
            try:
                write_message(self.process.requests, Message({"op": "shutdown"}))
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.process.close_pipes()
        self.output.text(wait=2.0)
        remove_snapshot(self._snapshot)


SERVER_STAGES = frozenset({"spec", "load", "checks", "request", "memory"})
"""The stages a server may name for its error; anything else (a hostile server's word) is "request"."""


def _error_of(response: Message) -> SubmissionError:
    """The server's error as the student's: its stage if it is one a server can fail in, its
    message cleaned of control characters and cut (it is the student's exception text)."""
    stage = response.header.get("stage")
    stage = stage if isinstance(stage, str) and stage in SERVER_STAGES else "request"
    return SubmissionError(stage, clean_text(response.header.get("message", ""), MESSAGE_LIMIT))


def _exit_words(code: int, profile: HardwareProfile) -> str:
    # bwrap's init process reports a child killed by signal S as exit status 128 + S, like a shell.
    signal_number = -code if code < 0 else code - 128 if code > 128 else 0
    if signal_number not in {s.value for s in signal.Signals}:
        return f"exited with status {code}"
    name = signal.Signals(signal_number).name
    if name == "SIGSEGV":
        return "crashed with a segmentation fault (SIGSEGV: native code read memory it does not own)"
    if name == "SIGXCPU":
        return f"used up its {profile.limits.cpu_seconds} s of CPU time (SIGXCPU)"
    if name == "SIGKILL":
        return "was killed (SIGKILL; the memory limit or the system ran out)"
    return f"was stopped by {name}"


class SandboxedModel(ModelProtocol):
    """The protocol over a SandboxServer; `randomized` returns another handle on the same server."""

    def __init__(self, server: SandboxServer, handle: int = 0) -> None:
        self.server = server
        self.handle = handle
        self._description: ModelDescription | None = None

    @classmethod
    def open(cls, folder: Path, profile: HardwareProfile, isolation: Isolation = "bwrap",
             exclude: Iterable[Path] = (), server: SandboxServer | None = None) -> SandboxedModel:
        """The submission in `folder` loaded in `server` (one started ahead: grader.sandbox.starter) or
        in a new one; `exclude` leaves paths out of its snapshot."""
        server = server if server is not None else SandboxServer(profile, isolation)
        server.load(Path(folder), exclude)
        return cls(server)

    @property
    def output(self) -> str:
        """What the student's code printed (bounded)."""
        return self.server.output.text()

    @property
    def start_wait(self) -> float:
        """Seconds opening this model waited for its server's start-up (SandboxServer.start_wait)."""
        return self.server.start_wait

    def describe(self) -> ModelDescription:
        if self._description is None:
            response = self._ask({"op": "describe"}, {}, "describing the model")
            try:
                self._description = description_from(response.header["description"])
            except (KeyError, TypeError, ValueError) as error:
                raise SubmissionError("request", f"the model's description is malformed: {error}") from None
        return self._description

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        response = self._ask({"op": "logits"}, {"pixels": _pixels(pixels)}, "computing logits")
        logits = _array(response, "logits", ndim=2)
        if len(logits) != len(pixels):
            raise SubmissionError("checks", f"the model returned {len(logits)} rows of logits for {len(pixels)} faces")
        return logits

    def input_gradient(self, pixels: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        message = objective_message(_pixels(pixels), objective, self.handle)
        response = self.server.request(message, "computing an input gradient")
        values, gradient = _array(response, "values", ndim=1), _array(response, "gradient", ndim=pixels.ndim)
        if values.shape != (len(pixels),) or gradient.shape != pixels.shape:
            raise SubmissionError("request", f"the gradient came back shaped {gradient.shape} for input {pixels.shape}")
        return values, gradient

    def activations(self, pixels: np.ndarray, layer: str) -> np.ndarray:
        response = self._ask({"op": "activations", "layer": layer}, {"pixels": _pixels(pixels)},
                             f"computing the activations of '{layer}'")
        activations = _array(response, "activations")
        if len(activations) != len(pixels):
            raise SubmissionError("request", f"'{layer}' returned {len(activations)} rows for {len(pixels)} faces")
        return activations

    def layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        response = self._ask({"op": "layer_gradient", "layer": layer},
                             {"pixels": _pixels(pixels), "classes": np.asarray(classes, dtype=np.int64)},
                             f"computing the gradient at '{layer}'")
        activations, gradient = _array(response, "activations"), _array(response, "gradient")
        if activations.shape != gradient.shape or len(activations) != len(pixels):
            raise SubmissionError("request", f"'{layer}' answered activations {activations.shape} and gradient "
                                             f"{gradient.shape} for {len(pixels)} faces")
        return activations, gradient

    def weights_fingerprint(self) -> WeightsFingerprint:
        """The fingerprint the server computes from the model it loaded; the arrays are checked as
        untrusted input (grader.fingerprint.fingerprint_from_arrays) and refused whole when any
        check fails, since a hostile server can send anything."""
        response = self._ask({"op": FINGERPRINT}, {}, "fingerprinting the model's weights")
        try:
            return fingerprint_from(response)
        except FingerprintError as error:
            raise SubmissionError("request", f"the model's server answered a malformed weights fingerprint: "
                                             f"{error}") from None

    def randomized(self, seed: int, top_layers: int) -> SandboxedModel:
        response = self._ask({"op": "randomized", "seed": seed, "top_layers": top_layers}, {},
                             "randomizing the model's weights")
        return SandboxedModel(self.server, int(response.header["handle"]))

    def close(self) -> None:
        if self.handle == 0:
            self.server.close()
        elif not self.server._closed:
            self._ask({"op": "release", "handle": self.handle}, {}, "releasing a model copy")

    def _ask(self, header: dict, arrays: dict[str, np.ndarray], what: str) -> Message:
        return self.server.request(Message(dict(header, handle=self.handle), arrays), what)


def _pixels(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _array(response: Message, name: str, ndim: int | None = None) -> np.ndarray:
    """An array of the answer, checked to be a float array of the expected rank."""
    array = response.arrays.get(name)
    if array is None or array.dtype.kind != "f" or (ndim is not None and array.ndim != ndim):
        shape = None if array is None else (array.shape, str(array.dtype))
        raise SubmissionError("request", f"the model's server answered '{name}' with {shape}, not a float array")
    return array.astype(np.float32, copy=False)
