#!/usr/bin/env python3
"""awssim.py: the AWS endpoints xcsreg's ECR source uses, simulated on loopback.

One HTTP server on 127.0.0.1 answers, like AWS does:
  ECR   POST / with X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken
        (JSON 1.1), SigV4-signed for service "ecr": the signature is recomputed
        here from the known keys and a mismatch is refused the way AWS refuses it.
  STS   Action=AssumeRoleWithWebIdentity (POST form or GET query), unsigned,
        answered in XML; the web identity token must be WEB_IDENTITY_TOKEN.
  IMDS  IMDSv2: PUT /latest/api/token, then GET
        /latest/meta-data/iam/security-credentials/[ROLE] with the token.
Control paths, for the tests:
  GET  /_log    the requests so far, as JSON (no secrets in it)
  POST /_reset  forget the log and any planned failures
  POST /_fail   {"op": "ecr"|"sts"|"imds", "status": 500, "type": "...",
                 "message": "...", "count": 1}: the next COUNT requests of OP fail

Usage: awssim.py --port-file FILE      (listens on a free port, writes it to FILE)
       awssim.py --self-test           (checks the verifier against AWS's test vectors)
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

# The long-term keys the simulator knows (fake, used by the tests).
ENV_KEY = ("AKIAXCSREGENVTEST001", "fake-env-secret-key/for+tests")
PROFILE_KEY = ("AKIAXCSREGPROFILE001", "fake-profile-secret-key")
WEB_IDENTITY_TOKEN = "fake-web-identity-token.for-tests"
ROLE_ARN = "arn:aws:iam::123456789012:role/xcsreg-test"
IMDS_ROLE = "xcsreg-test-instance-role"
ACCOUNT = "123456789012"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
MAX_SKEW = datetime.timedelta(minutes=5)


# ---- SigV4, recomputed from the request (AWS's "Signature Version 4 signing process") ----

def uri_encode(s, safe="-_.~"):
    return quote(s, safe=safe)


def canonical_request(method, raw_path, raw_query, headers, signed, payload_hash):
    """headers: list of (name, value) as received; signed: lower-case names."""
    # Non-S3 services encode each path segment twice; the raw path is encoded once.
    path = "/".join(uri_encode(seg) for seg in (raw_path or "/").split("/"))
    pairs = sorted((uri_encode(unquote(k)), uri_encode(unquote(v)))
                   for k, _, v in (p.partition("=") for p in raw_query.split("&") if p))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    values = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = "".join(f"{h}:{','.join(values.get(h, []))}\n" for h in signed)
    return "\n".join([method, path, query, lines, ";".join(signed), payload_hash])


def signature(secret, amz_date, scope, creq):
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class Refused(Exception):
    def __init__(self, status, aws_type, message):
        super().__init__(message)
        self.status, self.aws_type, self.message = status, aws_type, message


def verify(method, raw_path, raw_query, headers, body, service, keys, now):
    """Checks a SigV4 Authorization header. Returns (access_key, region, signed
    header names); raises Refused with AWS's error type and message."""
    hdr = {n.lower(): v for n, v in headers}
    auth = hdr.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r" ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})", auth)
    if not m:
        raise Refused(400, "MissingAuthenticationTokenException" if not auth else "IncompleteSignatureException",
                      "Missing Authentication Token" if not auth else
                      "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'.")
    akid, date, region, svc, signed_list, sig = m.groups()
    signed = signed_list.split(";")
    amz_date = hdr.get("x-amz-date", "")
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(date):
        raise Refused(400, "IncompleteSignatureException",
                      "'Host' and 'X-Amz-Date' must be signed, and the date match the credential scope.")
    absent = [h for h in signed if h not in hdr]
    if absent:  # what AWS answers, e.g. for libcurl < 8.3 signing the "Expect:" that only removes a header
        raise Refused(400, "IncompleteSignatureException",
                      f"'{absent[0]}' is named as a SignedHeader, but it does not exist in the HTTP request.")
    if svc != service:
        raise Refused(400, "InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{service}'.")
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if now is not None and abs(now - when) > MAX_SKEW:
        raise Refused(400, "InvalidSignatureException",
                      f"Signature expired: {amz_date} is now earlier or later than allowed.")
    if akid not in keys:
        raise Refused(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
    secret, token = keys[akid]
    if token is not None and hdr.get("x-amz-security-token") != token:
        raise Refused(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
    payload_hash = hashlib.sha256(body).hexdigest()
    if hdr.get("x-amz-content-sha256", payload_hash) != payload_hash:
        raise Refused(400, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.")
    creq = canonical_request(method, raw_path, raw_query, headers, signed, payload_hash)
    if not hmac.compare_digest(signature(secret, amz_date, f"{date}/{region}/{svc}/aws4_request", creq), sig):
        raise Refused(400, "InvalidSignatureException",
                      "The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method. "
                      "Consult the service documentation for details.")
    return akid, region, signed


def self_test():
    """Cases of AWS's published SigV4 test suite (aws-sig-v4-test-suite): the
    request, and the signature AWS documents for it."""
    keys = {"AKIDEXAMPLE": ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)}
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    cases = [  # name, method, query, extra headers, body, signed headers, signature
        ("get-vanilla", "GET", "", [], b"", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("post-vanilla", "POST", "", [], b"", "host;x-amz-date",
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("get-vanilla-query-order-key-case", "GET", "Param2=value2&Param1=value1", [], b"", "host;x-amz-date",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("post-x-www-form-urlencoded", "POST", "", form, b"Param1=value1", "content-type;host;x-amz-date",
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ]
    failures = 0
    for name, method, query, extra, body, signed, want in cases:
        headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + extra
        auth = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                f"SignedHeaders={signed}, Signature=")
        for label, sig, body_sent in ((name, want, body),
                                      (name + " with one digit changed", want[:-1] + ("1" if want[-1] == "0" else "0"), body),
                                      (name + " with another body", want, body + b"x")):
            refused = None
            try:
                verify(method, "/", query, headers + [("Authorization", auth + sig)], body_sent, "service", keys, None)
            except Refused as e:
                refused = e.aws_type
            ok = refused is None if sig == want and body_sent == body else refused == "InvalidSignatureException"
            failures += not ok
            print(f"{'ok' if ok else 'not ok'} - SigV4 test vector {label} "
                  f"{'verifies' if label == name else 'is refused'}" + ("" if ok else f" (got {refused})"))
    return failures


# ---- the server ----

class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.log, self.failures, self.serial = [], {}, 0
        self.keys = {ENV_KEY[0]: (ENV_KEY[1], None), PROFILE_KEY[0]: (PROFILE_KEY[1], None)}
        self.imds_tokens = set()

    def next_serial(self):
        with self.lock:
            self.serial += 1
            return self.serial

    def temporary_key(self, kind):
        """Mints an access key with a session token, as STS and IMDS hand out."""
        n = self.next_serial()
        akid, secret, token = f"ASIAXCSREG{kind}{n:04d}", f"fake-{kind.lower()}-secret-{n}", f"fake-{kind.lower()}-session-token-{n}"
        with self.lock:
            self.keys[akid] = (secret, token)
        return akid, secret, token

    def planned_failure(self, op):
        with self.lock:
            f = self.failures.get(op)
            if not f:
                return None
            f["count"] -= 1
            if f["count"] <= 0:
                del self.failures[op]
            return f


def expiration(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def record(self, op, **fields):
        entry = {"op": op, "method": self.command, "path": urlsplit(self.path).path, **fields}
        with self.state.lock:
            self.state.log.append(entry)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        if url.path == "/_log" and self.command == "GET":
            with self.state.lock:
                return self.reply(200, json.dumps(self.state.log))
        if url.path == "/_reset" and self.command == "POST":
            with self.state.lock:
                self.state.log, self.state.failures = [], {}
            return self.reply(200, "{}")
        if url.path == "/_fail" and self.command == "POST":
            f = json.loads(body)
            f.setdefault("count", 1)
            with self.state.lock:
                self.state.failures[f["op"]] = f
            return self.reply(200, "{}")
        if url.path.startswith("/latest/"):
            return self.imds(url.path)
        if self.headers.get("X-Amz-Target"):
            return self.ecr(url, body)
        params = dict(parse_qsl(url.query))
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode()))
        if params.get("Action") == "AssumeRoleWithWebIdentity":
            return self.sts(params)
        self.record("unknown")
        return self.reply(404, json.dumps({"__type": "UnknownOperationException"}))

    do_GET = do_POST = do_PUT = handle_any

    # ECR GetAuthorizationToken (JSON 1.1 protocol errors: __type and message)
    def ecr(self, url, body):
        def refuse(status, aws_type, message, **fields):
            self.record("ecr", ok=False, error=aws_type, **fields)
            self.reply(status, json.dumps({"__type": aws_type, "message": message}),
                       "application/x-amz-json-1.1", [("x-amzn-ErrorType", aws_type)])
        try:
            akid, region, signed = verify(self.command, url.path, url.query, self.headers.items(), body, "ecr",
                                          self.state.keys, datetime.datetime.now(datetime.timezone.utc))
        except Refused as e:
            return refuse(e.status, e.aws_type, e.message)
        fields = {"access_key": akid, "region": region, "signed_headers": signed}
        if self.headers.get("X-Amz-Target") != ECR_TARGET:
            return refuse(400, "UnknownOperationException", "", **fields)
        if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            return refuse(400, "SerializationException", "Start of structure or map found where not expected.", **fields)
        f = self.state.planned_failure("ecr")
        if f:
            return refuse(f.get("status", 500), f.get("type", "ServerException"), f.get("message", "simulated failure"), **fields)
        request = json.loads(body or b"{}")
        ids = request.get("registryIds") or [ACCOUNT]
        data = []
        for rid in ids:
            password = f"fake-ecr-password-{self.state.next_serial()}"
            data.append({
                "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                "expiresAt": round(datetime.datetime.now().timestamp() + 43200, 3),
                "proxyEndpoint": f"https://{rid}.dkr.ecr.{region}.amazonaws.com",
            })
        self.record("ecr", ok=True, registry_ids=request.get("registryIds"), **fields)
        self.reply(200, json.dumps({"authorizationData": data}), "application/x-amz-json-1.1")

    # STS AssumeRoleWithWebIdentity (Query protocol, XML)
    def sts(self, params):
        def error(status, code, message):
            self.record("sts", ok=False, error=code, role_arn=params.get("RoleArn"))
            self.reply(status, f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                               f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                               f"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
                       "text/xml")
        f = self.state.planned_failure("sts")
        if f:
            return error(f.get("status", 500), f.get("type", "ServiceUnavailable"), f.get("message", "simulated failure"))
        for p in ("RoleArn", "RoleSessionName", "WebIdentityToken", "Version"):
            if not params.get(p):
                return error(400, "MissingParameter", f"The request must contain the parameter {p}")
        if params["WebIdentityToken"] != WEB_IDENTITY_TOKEN:
            return error(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
        if params["RoleArn"] != ROLE_ARN:
            return error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        akid, secret, token = self.state.temporary_key("STS")
        self.record("sts", ok=True, role_arn=params["RoleArn"], session_name=params["RoleSessionName"])
        self.reply(200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROAXCSREGTEST:{params["RoleSessionName"]}</AssumedRoleId>
      <Arn>arn:aws:sts::{ACCOUNT}:assumed-role/xcsreg-test/{params["RoleSessionName"]}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expiration(3600)}</Expiration>
    </Credentials>
    <Provider>xcsreg-test-oidc</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
""", "text/xml")

    # IMDSv2
    def imds(self, path):
        def answer(status, text, **fields):
            self.record("imds", ok=status == 200, **fields)
            self.reply(status, text, "text/plain")
        if path == "/latest/api/token":
            if self.command != "PUT":
                return answer(405, "")
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "").isdigit():
                return answer(400, "")
            token = f"fake-imds-token-{self.state.next_serial()}"
            with self.state.lock:
                self.state.imds_tokens.add(token)
            return answer(200, token)
        if self.headers.get("X-aws-ec2-metadata-token") not in self.state.imds_tokens:
            return answer(401, "")
        f = self.state.planned_failure("imds")
        if f:
            return answer(f.get("status", 500), "")
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path == prefix:
            return answer(200, IMDS_ROLE)
        if path == prefix + IMDS_ROLE:
            akid, secret, token = self.state.temporary_key("IMDS")
            return answer(200, json.dumps({
                "Code": "Success", "LastUpdated": expiration(0), "Type": "AWS-HMAC",
                "AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
                "Expiration": expiration(6 * 3600)}), role=IMDS_ROLE)
        return answer(404, "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(1 if self_test() else 0)
    Handler.state = State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
