#!/usr/bin/env python3
"""scripts/bench --credprov: the wall time of credential-provider.lua's warm
answers, the kubelet's wait per pull: a static password (read from a file)
and an ECR token from the disk cache (minted once from tests/lib/awssim.py,
started around this by tests/lib/with-aws). Each is run R times as the
kubelet runs it (a new process, the request on stdin); the median and the
95th percentile are reported against the 20 ms target.

usage: credprov.py XCSREG RUNS"""
import json, os, statistics, subprocess, sys, tempfile, time

xcsreg, runs = sys.argv[1], int(sys.argv[2])
tmp = tempfile.mkdtemp(prefix="xcsreg-bench-credprov.")
os.chmod(tmp, 0o700)
pw = os.path.join(tmp, "pw")
with open(pw, "w") as f:
    f.write("fake-credprov-ghcr-pw")
os.chmod(pw, 0o600)
site = os.path.join(tmp, "site.lua")
with open(site, "w") as f:
    f.write('return { registries = {\n'
            f'  {{ secret = "ghcr", server = "ghcr.io", username = "bot", password_file = "{pw}" }},\n'
            '  { secret = "ecr", server = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} },\n'
            '} }\n')
env = dict(os.environ, AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="AKIAXCSREGENVTEST001",
           AWS_SECRET_ACCESS_KEY="fake-env-secret-key/for+tests", AWS_EC2_METADATA_DISABLED="true")
argv = [xcsreg, "run", "credential-provider.lua", "--config", site, "--cache-dir", os.path.join(tmp, "cache")]


def request(image):
    return json.dumps({"kind": "CredentialProviderRequest",
                       "apiVersion": "credentialprovider.kubelet.k8s.io/v1", "image": image}).encode()


def once(image):
    start = time.perf_counter()
    p = subprocess.run(argv, input=request(image), env=env, capture_output=True)
    took = time.perf_counter() - start
    if p.returncode != 0 or b'"auth":{"' not in p.stdout:
        sys.exit(f"bench: {image}: exit {p.returncode}: {p.stderr.decode()}")
    return took * 1000


rows = []
for name, image in (("static password", "ghcr.io/org/app"),
                    ("ECR token, disk cache", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/app")):
    once(image)  # the ECR token is minted here, once
    times = sorted(once(image) for _ in range(runs))
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    rows.append((name, statistics.median(times), p95))
print(f"credential-provider.lua warm answers, {runs} runs each (target <= 20 ms wall):")
print("| answer | median ms | p95 ms | target |")
print("| --- | ---: | ---: | --- |")
fail = 0
for name, med, p95 in rows:
    ok = med <= 20
    fail |= not ok
    print(f"| {name} | {med:.1f} | {p95:.1f} | {'met' if ok else 'MISSED'} |")
subprocess.run(["rm", "-rf", tmp])
sys.exit(1 if fail else 0)
