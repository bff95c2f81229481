"""Init, spin until SIGINT / SIGTERM / an external shutdown, stop, tear down: every DNK node's life.

rclpy's own signal handler shuts the context down the moment SIGINT arrives, so a node could no
longer publish its stop command (a zero twist for a controller without timeout) and a callback
caught mid-take could raise. DNK nodes therefore init with rclpy's handler off: SIGINT and
SIGTERM raise KeyboardInterrupt in the spin, `on_stop` runs while the context is still valid,
further signals are ignored during teardown (launch sends SIGINT twice), and the exit is clean.
"""
from __future__ import annotations

import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def init(args: list[str] | None) -> None:
    """rclpy.init without rclpy's signal handler; SIGINT and SIGTERM interrupt the spin instead."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def make_executor() -> Executor:
    """rclpy's EventsExecutor (C++ dispatch) where this rclpy has it, else the SingleThreadedExecutor.

    Measured on the planner node with 1 kHz joint states: the Python executor's per-callback
    overhead was the largest cost of the cycle outside the decision itself (bench_soak.py).
    """
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # rclpy before Jazzy 7.1
        return SingleThreadedExecutor()
    return EventsExecutor()


def spin_until_shutdown(node: Node, on_stop: Callable[[], None] | None = None) -> None:
    """Spin; on SIGINT/SIGTERM/external shutdown call `on_stop` (context still valid), then destroy."""
    executor = make_executor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            # bounded waits: a Python signal handler only runs between C calls, and rcl_wait without
            # a timeout would keep SIGINT/SIGTERM waiting until the next callback
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        try:
            if on_stop is not None and rclpy.ok():
                on_stop()
        finally:
            executor.remove_node(node)
            node.destroy_node()
            rclpy.try_shutdown()
