"""The host agent: reconcilers that realise the desired state of one host.

Every reconciler implements :class:`neutrino.agent.reconciler.Reconciler` (desired /
observe / diff / apply / report): ``diff`` is pure, ``apply`` idempotent; each declares
what it runs after, and :mod:`neutrino.agent.loop` runs them in that order.  Events only
mark keys dirty and a full resync marks every key dirty.  The agent talks to the server
only through the bus (:mod:`neutrino.agent.server_link`), and touches the kernel only
through :mod:`neutrino.linux`.
"""
