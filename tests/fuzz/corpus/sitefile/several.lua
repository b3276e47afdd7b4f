-- two Secrets, one with two registries
local function reg(secret, server, user, how, value)
  return { secret = secret, server = server, username = user, email = "ops@example.org", [how] = value }
end
return {
  service_accounts = { "default", "builder" },
  registries = {
    reg("site", "https://index.docker.io/v1/", "bot", "password_file", "/etc/xcsreg/hub"),
    reg("site", "registry.example.org:5000", "bot", "password_command", { "pass", "show", "reg" }),
    reg("other", "ghcr.io", "x", "password_env", "fail"),
  },
}
