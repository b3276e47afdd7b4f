-- /etc/xcsreg/registries.lua: the site file for a host's cron job or systemd
-- timer (xcsreg(1), "SITE FILE"). Installed by the Debian package as
-- /usr/share/doc/xcsreg/examples/registries.lua; copy it, then edit:
--   install -m 0640 -g xcsreg registries.lua /etc/xcsreg/registries.lua
-- Passwords are never in here: each entry says where its password comes
-- from. Password files: mode 0640, owner root, group xcsreg, in /etc/xcsreg.
-- Check it without a cluster: xcsreg run setup.lua --config FILE --dry-run=client -o yaml
return {
  -- the namespace XNAT's Container Service runs its jobs in
  namespaces = { "xnat-jobs" },
  -- the ServiceAccount its job pods run as
  service_accounts = { "default" },
  registries = {
    -- a GitHub token with read:packages
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot",
      password_file = "/etc/xcsreg/ghcr.token" },
    -- a Harbor robot account
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat+pull",
      password_file = "/etc/xcsreg/harbor.token" },
    -- AWS ECR: a 12-hour token minted at each run that needs one
    -- { secret = "ecr", server = "123456789012.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} },
  },
  -- the images XNAT's jobs use: a new credential is written only if they pull with it
  -- images = { "ghcr.io/example/pipeline:1.4" },
}
