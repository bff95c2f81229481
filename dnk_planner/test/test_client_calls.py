"""PlannerClient's service calls when an answer does not come: Fast DDS drops one when the server has
not yet discovered the client's reply reader (CI: get_state right after the planner started, and the
node's "failed to send response (timeout)")."""
from __future__ import annotations

import time

import pytest

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()

from lifecycle_msgs.msg import State  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402

from dnk_planner.ros.client import RESEND_S, BackgroundNode, PlannerClient  # noqa: E402


class SlowFirstAnswer(BackgroundNode):
    """A /<name>/get_state server that holds its first request past the client's resend period and
    answers the others at once: for the client, the first answer never comes in time."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name}_server")
        self.requests = 0
        self.node.create_service(GetState, f"/{name}/get_state", self._answer)

    def _answer(self, request: GetState.Request, response: GetState.Response) -> GetState.Response:
        self.requests += 1
        if self.requests == 1:
            time.sleep(RESEND_S + 1.0)
        response.current_state = State(id=State.PRIMARY_STATE_INACTIVE, label="inactive")
        return response


def test_a_query_is_sent_again_when_its_answer_does_not_come() -> None:
    server = SlowFirstAnswer("slow_first_answer")
    c = PlannerClient("slow_first_answer")
    try:
        assert c.lifecycle_state() == State.PRIMARY_STATE_INACTIVE
        assert server.requests >= 2
        server.requests = 0  # the next first request is held again: without resending, the call times out
        with pytest.raises(TimeoutError, match="get_state"):
            c.call(c._get_state, GetState.Request(), timeout=RESEND_S + 0.5)
    finally:
        c.close()
        server.close()
