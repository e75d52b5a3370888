#!/usr/bin/env python3
"""Writes internal/cluster/testdata/e2e: the admission e2e matrix.

The Pod Security Standards manifests (every control violated and
satisfied) and the controller kinds come from internal/policy/testdata,
with their expectations turned into admission outcomes under
testdata/policies/e2e.yaml; the scan-result, exception and unknown-image
cases are written here. Run from the repository root:

    python3 internal/cluster/testdata/gen/matrix.py
"""
import glob, os, re

BASELINE = ["hostProcess", "hostNamespaces", "privileged", "capabilities", "hostPathVolumes", "hostPorts",
            "hostProbes", "appArmor", "seLinux", "procMount", "seccomp", "sysctls"]
RESTRICTED = ["volumeTypes", "privilegeEscalation", "runAsNonRoot", "runAsUser", "seccompRestricted",
              "capabilitiesRestricted", "procMountRestricted"]
OUT = "internal/cluster/testdata/e2e"

def headers(text):
    h = {}
    for line in text.splitlines():
        m = re.match(r"# (\w+): (.*)", line)
        if m:
            h.setdefault(m.group(1), []).append(m.group(2))
    return h

def body(text, drop_ephemeral=False):
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    out = []
    skipping = False
    for l in lines:
        if re.match(r"\s+namespace: ", l):
            continue
        if drop_ephemeral and re.match(r"  ephemeralContainers:", l):
            skipping = True
            continue
        if skipping:
            if re.match(r"  [^\s-]", l):
                skipping = False
            else:
                continue
        # container images only (a volume's image source stays)
        l = re.sub(r"^(\s+(- )?)image: \S+$", r"\1image: IMAGE_CLEAN", l)
        out.append(l)
    return "\n".join(out).strip() + "\n"

# Manifests the API server refuses before admission (Kubernetes 1.34
# validation): the webhook never sees them.
INVALID = {
    "procMount-fail.yaml": "procMount Unmasked needs hostUsers: false, which the baseline level then allows",
    "seccomp-fail-empty-type.yaml": "a seccompProfile without a type",
}
# Restricted-control manifests that violate a baseline control too: denied,
# the field reported once, under the baseline rule (one field, one report).
ALSO_BASELINE = {
    "seccompRestricted-fail-container.yaml": ['rule "pss-baseline": seccomp at spec.containers[0].securityContext.seccompProfile.type'],
    "volumeTypes-fail.yaml": ['rule "pss-baseline": hostPathVolumes at spec.volumes[2].hostPath',
                              'rule "pss-restricted": volumeTypes at spec.volumes[1]'],
}

def write(name, head, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(head + text)

for old in glob.glob(os.path.join(OUT, "*.yaml")):
    os.remove(old)

for path in sorted(glob.glob("internal/policy/testdata/pss/*.yaml")):
    src = open(path).read()
    h = headers(src)
    control = h["control"][0]
    name = "pss-" + os.path.basename(path)
    if control == "restricted":
        write(name, "# a pod meeting the restricted level: admitted without a warning\n# expect: allow\n", body(src))
        continue
    fields = h.get("expect", [])
    base = os.path.basename(path)
    if base in INVALID:
        write(name, f"# {control} violated, refused by the API server's validation before admission: {INVALID[base]}\n# expect: invalid\n", body(src))
        continue
    if base in ALSO_BASELINE:
        write(name, f"# {control} violated, with a baseline violation too\n# expect: deny\n" +
              "".join(f"# message: {m}\n" for m in ALSO_BASELINE[base]), body(src))
        continue
    text = body(src, drop_ephemeral=True)
    if "hostProcess: true" in text and "hostNetwork: true" not in text:
        # the API server wants host-process pods on the host network
        text = text.replace("spec:\n", "spec:\n  hostNetwork: true\n", 1)
    if fields:
        rule = "pss-baseline" if control in BASELINE else "pss-restricted"
        outcome = "deny" if control in BASELINE else "warn"
        head = f"# {control} violated\n# expect: {outcome}\n# message: rule \"{rule}\": {control} at {fields[0]}\n"
    else:
        head = f"# {control} satisfied\n# expect: allow\n# absent: {control} at\n"
    write(name, head, text)

for path in sorted(glob.glob("internal/policy/testdata/kinds/*.yaml")):
    src = open(path).read()
    h = headers(src)
    kind = h["kind"][0]
    field = h["expect"][0]
    write("kind-" + os.path.basename(path),
          f"# a {kind} whose pod template violates the baseline level\n# expect: deny\n# message: rule \"pss-baseline\": privileged at {field}\n",
          body(src))

RESTRICTED_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}{labels}
spec:
  automountServiceAccountToken: false{extra}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: app
    image: {image}
    securityContext:
      capabilities: {{drop: [ALL]}}
      readOnlyRootFilesystem: true{privileged}
"""

def pod(name, image, labels="", extra="", privileged=""):
    # privileged: true excludes allowPrivilegeEscalation: false (the API
    # server refuses the pair)
    if not privileged:
        privileged = "\n      allowPrivilegeEscalation: false"
    return RESTRICTED_POD.format(name=name, image=image, labels=labels, extra=extra, privileged=privileged)

cases = [
    ("scan-vulnerable.yaml", "an image with a critical vulnerability that has a fix", "deny",
     ['rule "critical-vulnerabilities": vulnerabilities', "DEBIAN-CVE-2023-38545"], pod("vulnerable", "IMAGE_VULNERABLE")),
    ("scan-malware.yaml", "an image with malware (the EICAR test file)", "deny",
     ['rule "malware": malware', "in image"], pod("malware", "IMAGE_MALWARE")),
    ("scan-secrets.yaml", "an image with a private key in it", "deny",
     ['rule "secrets": secrets', "in image"], pod("secrets", "IMAGE_SECRETS")),
    ("scan-clean.yaml", "a scanned image without findings the policy blocks", "allow", [], pod("clean", "IMAGE_CLEAN")),
    ("unscanned-inline.yaml", "an image the server never saw, in a registry that needs the pod's pull secret: scanned inline, then admitted",
     "allow", [], pod("inline", "IMAGE_PRIVATE", extra="\n  imagePullSecrets: [{name: regcred}]")),
    ("unscanned-inline-vulnerable.yaml", "a vulnerable image the server never saw: scanned inline within the webhook deadline, then denied",
     "deny", ['rule "critical-vulnerabilities": vulnerabilities', "DEBIAN-CVE-2023-38545"],
     pod("inline-vulnerable", "IMAGE_PRIVATE_VULNERABLE", extra="\n  imagePullSecrets: [{name: regcred}]")),
    ("unscanned-unpullable.yaml", "an image that cannot be pulled: the scan fails, onScanFailure allow admits and logs it",
     "warn", ['rule "unknownImages"', "could not be scanned"], pod("unpullable", "IMAGE_MISSING")),
    ("unscanned-no-pull-secret.yaml", "a private image without its pull secret: the scan fails (401), admitted and logged",
     "warn", ['rule "unknownImages"', "could not be scanned"], pod("no-secret", "IMAGE_PRIVATE_OTHER")),
    ("exception-in-force.yaml", "a privileged pod under an exception in force: admitted, the waiver in a warning", "warn",
     ["waived:", 'rule "pss-baseline": privileged', '"legacy-in-force"', "E2E-1"],
     pod("waived", "IMAGE_CLEAN", labels="\n  labels: {exception: in-force}", privileged="\n      privileged: true")),
    ("exception-expired.yaml", "a privileged pod under an expired exception: denied", "deny",
     ['rule "pss-baseline": privileged at spec.containers[0].securityContext.privileged'],
     pod("expired", "IMAGE_CLEAN", labels="\n  labels: {exception: expired}", privileged="\n      privileged: true")),
]
for name, what, outcome, msgs, text in cases:
    head = f"# {what}\n# expect: {outcome}\n" + "".join(f"# message: {m}\n" for m in msgs)
    write(name, head, text)
