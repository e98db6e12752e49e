"""Load balancing as a service: the Octavia v2 API's objects (``service.py``), how the
provider's reports move their statuses (``status.py``), and the admin objects around
them: quotas, providers, flavors and availability zones (``catalog.py``)."""
