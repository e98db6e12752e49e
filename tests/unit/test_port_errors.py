"""Errors the port service builds in one place."""

from __future__ import annotations

import inspect

from neutrino import errors
from neutrino.services.l2 import ports


def test_address_pairs_need_port_security_has_one_builder() -> None:
    err = ports.pairs_need_port_security()
    assert isinstance(err, errors.Conflict) and err.status == 409
    assert err.body() == {"NeutronError": {
        "type": "AddressPairAndPortSecurityRequired",
        "message": "Port Security must be enabled in order to have allowed address pairs "
                   "on a port.", "detail": ""}}
    # the create and the update path raise that one error: its words live only there
    assert inspect.getsource(ports).count("AddressPairAndPortSecurityRequired") == 1
