"""Plug points below the services, ML2-style (see docs/architecture.md, "Drivers").

- :mod:`neutrino.drivers.types` — type drivers: which segment (VNI, VLAN, flat physical
  network) a network gets, one module per network type;
- :mod:`neutrino.drivers.mechanism` — mechanism drivers: bind ports to hosts, and follow
  network and port changes inside the transaction (precommit) and after it (postcommit);
- :mod:`neutrino.drivers.service` — the interfaces service drivers will implement (load
  balancers, firewalls).

Drivers import no service: what they need of the database is handed to them.
"""
