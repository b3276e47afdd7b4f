-- needs: none
-- The parts of a fleet's run that need no cluster: flags given again
-- parse back to the same (cli.args), a cluster's metrics read back
-- (metrics.parse) and labelled, the exit code of several, and which
-- clusters a run has (fleet.clusters).
local t = require "test"
local cli = require "xcsreg.cli"
local fleet = require "xcsreg.fleet"
local metrics = require "xcsreg.metrics"
local script = require "xcsreg.script"

local spec = script.flags { "namespace", "context", "kubeconfig", "quiet", "verbose",
  { long = "adopt", help = "x" }, { long = "output", short = "o", arg = "FORMAT", help = "x" } }
local args = { "-n", "a", "--namespace=b c", "-vv", "--adopt=false", "-o", "json", "--context", "x=y", "-q" }
local opts = assert(cli.parse(spec, args))
local again = assert(cli.parse(spec, cli.args(spec, opts)))
t.eq(again, opts, "cli.args: what cli.parse makes the same opts of")
t.eq(cli.args(spec, { namespace = { "a" }, adopt = false }), { "--namespace=a", "--adopt=false" },
  "... --long=value, a repeated flag once per value, in spec order")

local run = { time = 1700000000, success = true, expiries = {
  { namespace = "ns-1", secret = 'we"ird\\name', expires_at = 1700003600 },
  { namespace = "ns-2", secret = "reg", expires_at = 1700007200 } } }
t.eq(metrics.parse(metrics.text(run)), run, "metrics.parse reads back what metrics.text wrote")
t.eq(metrics.parse("xcsreg_last_run_success 1\n"), nil, "... and refuses a text that is not a run's")
local text = metrics.text { clusters = { { name = "a", time = 1, success = true, expiries = run.expiries },
  { name = 'b"', time = 2, success = false, expiries = {} } } }
t.ok(text:find('xcsreg_last_run_success{cluster="b\\""} 0\n', 1, true)
  and text:find('xcsreg_secret_expiry_timestamp_seconds{cluster="a",namespace="ns-2",secret="reg"} 1700007200\n', 1, true),
  "a fleet's metrics: every series labelled with its cluster first", text)

local EXIT = script.EXIT
t.eq(fleet.code { { code = 0 }, { code = 0 } }, EXIT.OK, "exit code: all 0 is 0")
t.eq(fleet.code { { code = 2 }, { code = 2 } }, EXIT.USAGE, "... all 2 is 2")
t.eq(fleet.code { { code = 0 }, { code = 2 } }, EXIT.FAILED, "... different is 1")
t.eq(fleet.code { { code = 0 }, { code = 143 } }, EXIT.FAILED, "... one stopped is 1")

local plan = { clusters = { { name = "p", context = "prod" }, { name = "d", kubeconfig = "/k", context = "dev" } } }
t.eq(fleet.clusters({}, plan), plan.clusters, "the site file's clusters")
t.eq(fleet.clusters({ context = { "prod" } }, plan), nil, "... one --context overrides them: one cluster")
t.eq(fleet.clusters({ kubeconfig = "/x" }, plan), nil, "... so does --kubeconfig")
t.eq(fleet.clusters({ context = { "a", "b" }, kubeconfig = "/k" }, plan),
  { { name = "a", context = "a", kubeconfig = "/k" }, { name = "b", context = "b", kubeconfig = "/k" } },
  "--context repeated: a fleet of those contexts of the one kubeconfig")
t.eq({ fleet.clusters({ context = { "a", "a" } }, plan) }, { nil, '--context: "a" given twice' }, "... each once")
local o = {}
t.eq(fleet.clusters(o, { clusters = { { name = "d", kubeconfig = "/k", context = "dev" } } }), nil,
  "a site file of one cluster: a run of it alone")
t.eq({ o.kubeconfig, o.context }, { "/k", { "dev" } }, "... as if its flags had been given")
t.eq(fleet.clusters({}, {}), nil, "no clusters: one cluster, as ever")
return t.done()
