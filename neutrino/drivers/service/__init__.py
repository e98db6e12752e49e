"""Service drivers: the interfaces the next services plug their backends into.

- :mod:`.loadbalancer` — what a load balancer provider does (Octavia's provider driver
  seam): the load balancer service will store intent and call one of these;
- :mod:`.firewall` — what realises FWaaS v2 firewall groups on ports.

Interfaces only: no service calls them yet.  Like the mechanism drivers they are loaded
by name, never see the database, and get read-only values.
"""
