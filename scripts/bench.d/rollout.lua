-- rollout.lua KUBECONFIG N M [CONCURRENCY]: scripts/bench's bare client:map
-- rollout, setup.lua's requests without its workflow (no site file, no
-- verification, rotation bookkeeping, lock or output): the Secrets reg-1..reg-M
-- (passwords from $BENCH_PASSWORD_<j>) in namespaces ns-1..ns-N, and their
-- names merged into each namespace's ServiceAccount `default`. The same
-- reads as setup.lua with cluster-wide list rights: two LISTs, then only
-- the writes that change something, namespaces concurrently.
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local k8s = require "k8s"

local kubeconfig, n, m, concurrency = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4] or 8)
assert(kubeconfig and n and m, "usage: rollout.lua KUBECONFIG N M [CONCURRENCY]")
local MANAGED = "app.kubernetes.io/managed-by"

local client <close> = assert(k8s.client { kubeconfig = kubeconfig, concurrency = concurrency })

local function secret(ns, j)
  local password = assert(os.getenv("BENCH_PASSWORD_" .. j), "BENCH_PASSWORD_" .. j .. " is not set")
  local config = dockerconfig.encode { { server = "registry-" .. j .. ".example.invalid", username = "bench",
                                         password = password } }
  return { apiVersion = "v1", kind = "Secret", type = "kubernetes.io/dockerconfigjson",
           metadata = { name = "reg-" .. j, namespace = ns, labels = { [MANAGED] = "xcsreg" } },
           data = { [".dockerconfigjson"] = base64.encode(config) } }
end

local reads = client:map({ { "/api/v1/secrets", { labelSelector = MANAGED .. "=xcsreg" } },
                           { "/api/v1/serviceaccounts", { fieldSelector = "metadata.name=default" } } },
  function(r) return assert(client:list(r[1], r[2])) end)
local stored, accounts = {}, {}
for _, s in ipairs(reads[1].items) do stored[s.metadata.namespace .. "/" .. s.metadata.name] = s end
for _, sa in ipairs(reads[2].items) do accounts[sa.metadata.namespace] = sa end

local namespaces = {}
for i = 1, n do namespaces[i] = "ns-" .. i end
local failed = client:map(namespaces, function(ns)
  for j = 1, m do
    local want, have = secret(ns, j), stored[ns .. "/reg-" .. j]
    if not have then
      assert(client:create(k8s.path("/api/v1/namespaces/%s/secrets", ns), want))
    elseif have.data[".dockerconfigjson"] ~= want.data[".dockerconfigjson"] then
      want.metadata.resourceVersion = have.metadata.resourceVersion
      assert(client:replace(k8s.path("/api/v1/namespaces/%s/secrets/%s", ns, want.metadata.name), want))
    end
  end
  local sa = assert(accounts[ns], ns .. ": no ServiceAccount default")
  local list, present, changed = {}, {}, false
  for i, ref in ipairs(sa.imagePullSecrets or {}) do
    list[i], present[ref.name] = ref, true
  end
  for j = 1, m do
    if not present["reg-" .. j] then list[#list + 1], changed = { name = "reg-" .. j }, true end
  end
  if changed then
    assert(client:patch(k8s.path("/api/v1/namespaces/%s/serviceaccounts/default", ns),
      { metadata = { resourceVersion = sa.metadata.resourceVersion }, imagePullSecrets = list }, "merge"))
  end
end)
return #failed == 0
