"""Init, spin until SIGINT / SIGTERM / an external shutdown, stop, tear down: every DNK node's life.

rclpy's own signal handler shuts the context down the moment SIGINT arrives, so a node could no
longer publish its stop command (a zero twist for a controller without timeout) and a callback
caught mid-take could raise. DNK nodes therefore init with rclpy's handler off: SIGINT and
SIGTERM set a stop request the spin loop checks between callbacks, `on_stop` runs while the
context is still valid, further signals are ignored during teardown (launch sends SIGINT twice),
and the exit is clean.
"""
from __future__ import annotations

import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


class _StopRequest:
    """Set by SIGINT / SIGTERM; the spin loop checks it between callbacks, so a signal never raises
    inside a callback (rclpy's executors log that as a fatal callback error, or it escapes from
    the middle of a message take)."""

    requested = False

    @classmethod
    def handle(cls, signum, frame) -> None:
        cls.requested = True


def init(args: list[str] | None) -> None:
    """rclpy.init without rclpy's signal handler; SIGINT and SIGTERM request a stop instead."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    _StopRequest.requested = False
    signal.signal(signal.SIGINT, _StopRequest.handle)
    signal.signal(signal.SIGTERM, _StopRequest.handle)


def spin_until_shutdown(node: Node, on_stop: Callable[[], None] | None = None) -> None:
    """Spin until SIGINT/SIGTERM/external shutdown; then call `on_stop` (context still valid) and destroy."""
    # rclpy's experimental EventsExecutor was tried here: sim_gen3 (1 kHz timer) then hung in teardown
    # once under `ros2 launch` in CI, SIGINT and SIGTERM both ignored; its gain was not measured cleanly
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not _StopRequest.requested:
            # bounded waits: the stop request is seen within 0.1 s even when no callback is due
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
