"""Service drivers: the interfaces the next services plug their backends into.

- :mod:`.loadbalancer` — what a load balancer provider does (Octavia's provider driver
  seam): the load balancer service will store intent and call one of these;
- :mod:`.firewall` — what realises FWaaS v2 firewall groups on ports.

The firewall service (``services/firewall``) calls :mod:`.firewall_noop`, the built-in
driver that enforces nothing yet; the load balancer seam is an interface only.  Like the
mechanism drivers they never see the database and get read-only values.
"""
