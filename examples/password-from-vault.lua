-- Passwords from an HTTP secret store: HashiCorp Vault's KV version 2.
--
-- No password on the host's disk or in its environment: each registry's
-- password is read from Vault (GET /v1/secret/data/xcsreg/SECRET, field
-- "password") with the Vault token in $VAULT_TOKEN, once per run, under
-- the lock. If Vault refuses or is down, the run stops with exit 2 before
-- anything is written, naming this file, the line and the hook.
--
--   vault kv put secret/xcsreg/ghcr password=ghp_...
--   VAULT_TOKEN=... xcsreg run setup.lua --config password-from-vault.lua
--
-- Tested by tests/integration/test_examples.lua ("password-from-vault").
local VAULT_ADDR = "https://vault.example.org:8200"
local VAULT_CA_FILE = nil -- a CA file for Vault's certificate, if not the system's

-- secret_env marks the value as a secret: it is masked in every message.
local token = xcsreg.secret_env("VAULT_TOKEN")

return {
  namespaces = { "container-service" },
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat" },
  },
  hooks = {
    -- password: called for each entry that names no password source.
    password = function(entry)
      if not token then error("VAULT_TOKEN is not set") end
      local url = VAULT_ADDR .. "/v1/secret/data/xcsreg/" .. entry.secret
      local status, err, body = xcsreg.http.request {
        url = url, headers = { ["X-Vault-Token"] = token }, ca_file = VAULT_CA_FILE, timeout = 10,
      }
      if not status then error("Vault: " .. err) end
      if status ~= 200 then error(string.format("Vault answered %d for %s", status, url)) end
      local doc = xcsreg.json.decode(body)
      local password = doc.data and doc.data.data and doc.data.data.password
      if type(password) ~= "string" then error("Vault: no field password in " .. url) end
      return password
    end,
  },
}
