-- Tell a chat webhook what changed and what failed.
--
-- After the run's writes, each Secret or ServiceAccount that was created,
-- changed or failed is posted to a Slack-style incoming webhook as
-- {"text": "..."}; unchanged objects (the usual cron run) are not. A
-- webhook that is down is logged as a warning: it never fails the run.
--
--   xcsreg run setup.lua --config results-webhook.lua
--
-- Tested by tests/integration/test_examples.lua ("results-webhook").
local WEBHOOK_URL = "https://chat.example.org/hooks/xcsreg"

return {
  namespaces = { "container-service" },
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
  },
  hooks = {
    -- result: one event per object handled: namespace, kind, name,
    -- result (created, configured, unchanged or failed), error, dry_run.
    result = function(event)
      if event.result == "unchanged" or event.dry_run then return end
      local text = string.format("xcsreg: %s/%s in namespace %s %s", event.kind, event.name, event.namespace,
        event.result)
      if event.error then text = text .. ": " .. event.error end
      local status, err = xcsreg.http.request {
        url = WEBHOOK_URL, method = "POST", timeout = 10,
        headers = { ["Content-Type"] = "application/json" }, body = xcsreg.json.encode { text = text },
      }
      if not status then
        xcsreg.log.warn("webhook: %s", err)
      elseif status >= 300 then
        xcsreg.log.warn("webhook: answered %d", status)
      end
    end,
  },
}
