return { namespaces = { "xnat-jobs" }, service_accounts = { "default" },
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot",
                   password_env = "GHCR_TOKEN" } } }
