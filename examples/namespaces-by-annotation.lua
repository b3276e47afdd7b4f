-- The namespaces to handle, named by an annotation: one per XNAT project.
--
-- A site that runs each XNAT project's jobs in a namespace of its own
-- marks them with the annotation xnat.example.org/project (annotations,
-- unlike labels, are not selectable, and this one holds free text): every
-- such namespace that is not being deleted gets the pull Secrets.
--
--   kubectl annotate namespace proj-neuro xnat.example.org/project="Neuro imaging"
--   xcsreg run setup.lua --config namespaces-by-annotation.lua
--
-- Tested by tests/integration/test_examples.lua ("namespaces-by-annotation").
local ANNOTATION = "xnat.example.org/project"

return {
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
  },
  hooks = {
    -- namespaces: returns the names to handle; cluster reads the API.
    namespaces = function(cluster)
      local list, err = cluster.list("/api/v1/namespaces")
      if not list then error("cannot list namespaces: " .. err) end
      local names = {}
      for _, ns in ipairs(list.items) do
        local annotations = ns.metadata.annotations or {}
        if annotations[ANNOTATION] and (ns.status or {}).phase ~= "Terminating" then
          names[#names + 1] = ns.metadata.name
        end
      end
      table.sort(names)
      return names
    end,
  },
}
