-- Per-namespace registries, chosen by a namespace label.
--
-- One site file for namespaces with different needs: each namespace
-- labelled xcsreg.io/registry-set gets the Secrets of the set its label
-- names (XNAT's job namespace gets both registries; a team namespace only
-- GHCR); a namespace whose set is unknown here gets none. A namespace
-- without the label is not handled at all (namespace_selector).
--
--   kubectl label namespace container-service xcsreg.io/registry-set=xnat
--   xcsreg run setup.lua --config registries-by-label.lua
--
-- Tested by tests/integration/test_examples.lua ("registries-by-label").
local SETS = {
  xnat = { ghcr = true, harbor = true },
  team = { ghcr = true },
}

return {
  namespace_selector = "xcsreg.io/registry-set",
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_env = "HARBOR_PASSWORD" },
  },
  hooks = {
    -- registries: a copy of the entries above; returns those for namespace.
    registries = function(namespace, registries, cluster)
      local ns, err = cluster.get("/api/v1/namespaces/" .. namespace)
      if not ns then error("cannot read namespace " .. namespace .. ": " .. err) end
      local set = SETS[(ns.metadata.labels or {})["xcsreg.io/registry-set"]]
      if not set then
        xcsreg.log.warn("namespace %s: no registry set of that name here; no Secret for it", namespace)
        return {}
      end
      local chosen = {}
      for _, r in ipairs(registries) do
        if set[r.secret] then chosen[#chosen + 1] = r end
      end
      return chosen
    end,
  },
}
