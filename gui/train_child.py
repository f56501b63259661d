"""The training process's entry point: no Qt here (the child imports only viaseg.core and TensorFlow).

``TrainThread`` (``viaseg.gui.train_thread``) runs training in a *spawned* process by default: TensorFlow then holds
the GIL of another interpreter, so the GUI thread never waits behind model building, graph tracing or
validation (measured in-process: stalls of 0.5 s on a loaded 2-core box), and an out-of-memory kill of the
run cannot take the app down. Events travel back pickled through a ``multiprocessing`` queue.
"""

from __future__ import annotations

import os
import sys


def child_main(config, queue, stop_event, nice: int = 5) -> None:
    """Run ``viaseg.core.ml.train.train(config)``; put ``("event", ev)`` for each event, then exactly one
    ``("result", TrainResult)`` or ``("error", message)``."""
    try:
        os.nice(nice)  # the whole process (TF pools included) yields to the GUI
    except (AttributeError, OSError):
        pass
    try:
        from viaseg.core.ml.train import train

        # a job object (e.g. core.loop.ImproveJob) runs itself; a TrainConfig is trained
        run = getattr(config, "run", None) or (lambda **kw: train(config, **kw))
        result = run(on_event=lambda ev: queue.put(("event", ev)), should_stop=stop_event.is_set)
        queue.put(("result", result))
    except BaseException as exc:  # reported to the GUI as a message
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
    _exit_now(queue)


def _exit_now(queue) -> None:
    """End the process as soon as its answer is through the pipe. Everything the run writes is written and
    closed before ``train`` returns; what a normal exit adds is Python's and TensorFlow's teardown, about 3.5 s
    after a tiny run (``test_closing_window_during_training_asks_then_stops``: the close took 7.1 s with it, 3.7 s
    without), which the app waited for at every run's end and every close while training."""
    queue.close()
    queue.join_thread()  # the answer is in the pipe
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)
