-- /etc/xcsreg/registries.lua on a node: the site file setup.lua reads, here
-- read by the kubelet's credential provider (credential-provider.lua). The
-- same keys; namespaces, service_accounts and the registries hook are
-- setup.lua's and not used on a node.
return {
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_file = "/etc/xcsreg/ghcr.token" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat",
      password_file = "/etc/xcsreg/harbor.token" },
    -- the node's own IAM role (instance metadata) for the site's ECR registry
    { secret = "ecr", server = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} },
    -- KEP-4412: each workload's role, from its ServiceAccount's annotation
    -- (listed in tokenAttributes), exchanged with STS for the pod's token
    { secret = "ecr-workloads", server = "444455556666.dkr.ecr.eu-west-1.amazonaws.com",
      ecr = { role_annotation = "xcsreg.io/ecr-role-arn" } },
    { secret = "gar", server = "europe-docker.pkg.dev", gcp = {} },
  },
}
