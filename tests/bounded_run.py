"""A Pipeline whose run stops the job after a while: streaming tests on the DirectRunner, which never ends a Pub/Sub read."""
from __future__ import annotations

import logging
import threading
import time

import apache_beam as beam
from apache_beam.runners.runner import PipelineResult, PipelineState

log = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 2


class BoundedRunPipeline(beam.Pipeline):
    """A pipeline whose run() result stops the job after `seconds`, or once `done` is set."""

    def __init__(self, seconds: float, done: threading.Event | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds
        self.done = done

    def run(self, test_runner_api="AUTO"):
        return BoundedRunResult(super().run(test_runner_api), self.seconds, self.done)


class BoundedRunResult(PipelineResult):
    """Wraps a running job: wait_until_finish() waits at most `seconds` (less if `done` is set),
    then cancels the job."""

    def __init__(self, result: PipelineResult, seconds: float, done: threading.Event | None = None):
        super().__init__(result.state)
        self._result = result
        self.seconds = seconds
        self.done = done

    @property
    def state(self):
        return self._result.state

    def metrics(self):
        return self._result.metrics()

    def cancel(self):
        return self._result.cancel()

    def wait_until_finish(self, duration=None):
        try:
            self._result.wait_until_finish(duration=int(self.seconds * 1000))
        except NotImplementedError:
            # The DirectRunner cannot wait for a duration: wait in a daemon thread instead. After
            # cancel() that thread stays blocked on the runner's update queue until the process ends.
            self._wait_in_thread()
        if not PipelineState.is_terminal(self.state):
            log.info("streaming run: %.0f s passed, cancelling the job", self.seconds)
            self._cancel()
        return self.state

    def _cancel(self):
        # The DirectRunner's cancel() joins its worker threads, and one may be inside a Pub/Sub
        # pull that returns only after 30 s on an idle subscription: do not wait for that.
        canceller = threading.Thread(target=self._result.cancel, name="stancebeam-cancel", daemon=True)
        canceller.start()
        canceller.join(CANCEL_WAIT_SECONDS)
        if canceller.is_alive():
            log.warning("streaming run: the job is still stopping after %d s; not waiting for it",
                        CANCEL_WAIT_SECONDS)

    def _wait_in_thread(self):
        failure: list[BaseException] = []

        def wait():
            try:
                self._result.wait_until_finish()
            except BaseException as e:  # re-raised in the caller's thread
                failure.append(e)

        waiter = threading.Thread(target=wait, name="stancebeam-bounded-run", daemon=True)
        waiter.start()
        deadline = time.monotonic() + self.seconds
        while waiter.is_alive() and time.monotonic() < deadline and not (self.done and self.done.is_set()):
            waiter.join(min(0.5, max(0.0, deadline - time.monotonic())))
        if failure:
            raise failure[0]
