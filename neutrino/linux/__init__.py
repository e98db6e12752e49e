"""The only code that touches the kernel or runs a program.

- ``run``: the one way to run a program (optionally inside a namespace)
- netlink through pyroute2, one module per kernel object: ``namespaces`` (and a whole
  namespace at once), ``devices`` (links: bridges, veth pairs, VXLAN), ``vlans`` (VLAN
  segments: veth pairs and their tc filters), ``addressing``, ``routing``, ``fdb``,
  ``neighbours``; ``ipr`` is their shared rtnetlink handle and error mapping
- ``rtnl``: raw rtnetlink for the hot paths: a lean link dump, one device's FDB, link
  events, sockets opened in a namespace without forking
- ``bpf``: the tc programs of VLAN segments, assembled without a compiler, and loading
- ``nft``: nftables tables through the JSON interface, one transaction per table
- ``process``/``files``: supervised helper daemons and their atomically written files
- ``sysctl``: kernel parameters, per namespace

Every function is idempotent: ``ensure_*`` changes only what differs and says
whether it changed anything; ``delete_*`` treats "already gone" as done.
"""
