from devstack.servers.kube.cluster import main

main()
