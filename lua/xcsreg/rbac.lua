-- xcsreg.rbac: what to tell a cluster admin after a 403: the grants xcsreg
-- needs, ready to apply, bound to the identity the 403 names. The same
-- grants ship in scripts/k8s/rbac.yaml and scripts/k8s/clusterrole-optional.yaml.
local rbac = {}

-- The RBAC subject for the user a 403 names (a ServiceAccount when it is one).
local function subject(err)
  local user = tostring(err):match('User "([^"]+)"') or "USER"
  local sa_ns, sa_name = user:match("^system:serviceaccount:([^:]+):([^:]+)$")
  if sa_ns then return string.format("{kind: ServiceAccount, name: %s, namespace: %s}", sa_name, sa_ns) end
  return string.format("{kind: User, name: %q, apiGroup: rbac.authorization.k8s.io}", user)
end

-- The Role and RoleBinding xcsreg needs in namespace ns.
function rbac.role_hint(ns, err)
  return string.format([[
xcsreg needs, in namespace %s: secrets get, create, update; serviceaccounts get, patch.
Have a cluster admin grant them (scripts/k8s/rbac.yaml has this Role for a CronJob's own ServiceAccount):
  kubectl apply -f - <<'EOF'
  apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: xcsreg, namespace: %s}
  rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, create, update]}
  - {apiGroups: [""], resources: [serviceaccounts], verbs: [get, patch]}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: xcsreg, namespace: %s}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: xcsreg}
  subjects: [%s]
  EOF]], ns, ns, ns, subject(err))
end

-- The ClusterRole and ClusterRoleBinding that let xcsreg list namespaces
-- (`what` needs it).
function rbac.namespaces_hint(what, err)
  return string.format([[
%s needs to list namespaces, which are cluster-scoped: no Role can grant it.
Have a cluster admin grant it (scripts/k8s/clusterrole-optional.yaml has this ClusterRole for a CronJob's own
ServiceAccount), or name the namespaces instead (namespaces = {...} in the site file, or -n):
  kubectl apply -f - <<'EOF'
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: xcsreg-namespaces}
  rules:
  - {apiGroups: [""], resources: [namespaces], verbs: [list]}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: xcsreg-namespaces}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: xcsreg-namespaces}
  subjects: [%s]
  EOF]], what, subject(err))
end

return rbac
