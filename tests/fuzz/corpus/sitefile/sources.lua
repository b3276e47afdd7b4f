return {
  namespaces = { "a", "b-2" },
  registries = {
    { secret = "ecr", server = "123456789012.dkr.ecr.eu-west-1.amazonaws.com", username = "AWS",
      ecr = { region = "eu-west-1", registry_id = "123456789012" }, refresh_before = "3h" },
    { secret = "gar", server = "europe-docker.pkg.dev", username = "oauth2accesstoken", gcp = {} },
    { secret = "hub", server = "docker.io", username = "me", credential_helper = "pass",
      registry_ca_file = "/etc/ca.pem", insecure_registry = false },
    { secret = "hub", server = "ghcr.io", username = "me", docker_config = "~/.docker/config.json" },
  },
}
