"""`python -m devstack.servers.kube start|stop|status`: the control plane alone."""

from devstack.servers.kube.cluster import main

main()
