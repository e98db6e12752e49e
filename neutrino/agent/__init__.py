"""The host agent: reconcilers that realise the desired state of one host.

Each reconciler (``l2``, ``dhcp``, ``l3``, ``firewall``) is
``desired(snapshot) / observe() / diff(desired, observed, keys) -> plan / apply(plan)``:
``diff`` is pure, ``apply`` idempotent; events only mark keys dirty and a full
resync marks every key dirty (:mod:`neutrino.agent.agent` runs the loop).  The agent
talks to the server only through the bus, and touches the kernel only through
:mod:`neutrino.linux`.
"""
