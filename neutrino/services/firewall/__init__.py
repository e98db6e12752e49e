"""FWaaS v2: firewall rules, policies (ordered rules) and groups (policies on ports).

One family in three services, made in this order: rules, policies (they hold rules),
groups (they hold policies and ports, and make each project's default group with its
policies and rules).  Rules and policies are shared by a flag (``shared``): a shared
object is seen and used by every project and changed by its own project alone; another
project's unshared object does not exist for the caller (404).

What realises a group is a :class:`neutrino.drivers.service.firewall.FirewallDriver`,
called like the mechanism drivers; its reports come back through
:class:`.status.GroupStatus`.  Nothing enforces the groups yet (docs/firewall.md).
"""
