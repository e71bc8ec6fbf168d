"""The README's Quick Start A-F, unchanged, through the gateway of the SocialHub on the real
node: the pods, the gateway ConfigMap, the Services and CoreDNS answer what `make up` answers.
(`gateway` is this package's: the NodePort of the operator's gateway Service.)"""

import pytest

from tests.test_quickstart import (
    test_a_b_register_and_login,
    test_c_create_a_post,
    test_d_e_follow_a_user_and_they_get_notified,
    test_f_chat_through_the_gateway,
)

# Generous: the first test also waits for the images, the node and the SocialHub.
pytestmark = [pytest.mark.node, pytest.mark.kube, pytest.mark.slow, pytest.mark.timeout(900)]

__all__ = [
    "test_a_b_register_and_login",
    "test_c_create_a_post",
    "test_d_e_follow_a_user_and_they_get_notified",
    "test_f_chat_through_the_gateway",
]
