"""The Octavia v2 API (``/load-balancer``): routes, list queries, Octavia's error
envelope and version discovery.  The operations are the load-balancer services'."""
