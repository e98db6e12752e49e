"""The only code that touches the kernel or runs a program.

- ``names``: kernel object names (Neutron's), and parsing them back
- ``run``: the one way to run a program (optionally inside a namespace)
- ``netlink``: namespaces, links, addresses, routes, FDB, neighbours, VLAN segments
  (pyroute2, tc included)
- ``rtnl``: raw rtnetlink for the hot paths: a lean link dump, one device's FDB, link
  events, sockets opened in a namespace without forking
- ``bpf``: the tc programs of VLAN segments, assembled without a compiler, and loading
- ``nft``: nftables tables through the JSON interface, one transaction per table
- ``process``/``files``: supervised helper daemons and their atomically written files
- ``sysctl``: kernel parameters, per namespace

Every function is idempotent: ``ensure_*`` changes only what differs and says
whether it changed anything; ``delete_*`` treats "already gone" as done.
"""
