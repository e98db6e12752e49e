"""Domain services, composed once at start-up (no inheritance chains, no mixins)."""

from __future__ import annotations

from neutrino.config import Settings
from neutrino.drivers.segments import SegmentAllocator
from neutrino.services.collection import Collection
from neutrino.services.networks import Networks
from neutrino.services.ports import Ports
from neutrino.services.quotas import Quotas
from neutrino.services.subnets import Subnets


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.quotas = Quotas(settings.quotas)
        self.networks = Networks(SegmentAllocator(settings), self.quotas)
        self.subnets = Subnets(settings, self.networks, self.quotas)
        self.ports = Ports(settings, self.networks, self.subnets, self.quotas)
        #: collection name -> service, for the generic CRUD routes
        self.collections: dict[str, Collection] = {
            "networks": self.networks, "subnets": self.subnets, "ports": self.ports,
        }
