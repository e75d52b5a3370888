#!/usr/bin/env bash
# Misconfiguration checks side by side, in one run:
#   image:     dockle v0.4.15 (`dockle --input`), trivy v0.74.0 (`trivy image
#              --input --scanners misconfig --image-config-scanners misconfig`)
#              and `mamori image --scanners misconfig` on the reference image;
#   manifests: `trivy config` and `mamori config` on bench/testdata (Kubernetes
#              manifests and Dockerfiles).
# Prints wall time and peak RSS of each, then per input file which check IDs
# fired with each tool, and for every peer check that fired the mamori check
# that covers it (MAP below; "MISSING" when mamori has none, "not fired" when
# mamori has one but it did not fire on that file).
#
# Usage: bench/misconfig.sh [IMAGE.tar]   (default: the reference image)
source "$(dirname "$0")/lib.sh"
ensure_time
IMG="${1:-$("$REPO_ROOT/bench/refimage.sh")}"
TD="$REPO_ROOT/bench/testdata"
MAMORI=$(build_mamori)
TRIVY=$(peer_trivy)
DOCKLE=$(peer_dockle)
TRIVY_COMMON=(--quiet --skip-check-update --skip-version-check --disable-telemetry --cache-dir "$BENCH_DIR/trivy-cache" --cache-backend memory)
TRIVY_OPTS=("${TRIVY_COMMON[@]}" --skip-db-update --offline-scan)

# A second, small image whose configuration and files carry the usual image
# sins, in the classic `docker build` history format the peers parse (the
# reference image has only two "COPY" history entries, so trivy's
# image-config scan has nothing to look at there): root user, no
# HEALTHCHECK, update alone, apt without cleanup, dist-upgrade, sudo, remote
# ADD, secrets in ENV, port 22, VOLUME /etc, an empty password, duplicate
# UID/GID, setuid and world-writable files, sshd, .git and a Dockerfile left
# in, and a privileged Pod manifest and a Dockerfile inside the image.
BADIMG="$BENCH_DIR/misconfig-img.tar"
python3 - "$BADIMG" <<'PY'
import hashlib, io, json, sys, tarfile, time
files = {  # path: (mode, content)
    "etc/passwd": (0o644, "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"),
    "etc/shadow": (0o640, "root:*:19000:0:99999:7:::\napp::19000:0:99999:7:::\ntoor:!:19000:0:99999:7:::\n"),
    "etc/group": (0o644, "root:x:0:\napp:x:1000:\nstaff:x:1000:\n"),
    "usr/sbin/sshd": (0o755, "\x7fELF placeholder sshd\n"),
    "usr/local/bin/helper": (0o4755, "#!/bin/sh\necho setuid\n"),
    "srv/data.txt": (0o666, "world-writable\n"),
    "srv/app/.git/config": (0o644, "[core]\n\trepositoryformatversion = 0\n"),
    "srv/app/.env": (0o644, "API_URL=https://example.com\n"),
    "srv/app/Dockerfile": (0o644, "FROM debian:latest\nRUN apt-get update\nADD https://example.com/x /x\n"),
    "srv/app/k8s/pod.yaml": (0o644, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers:\n    - name: c\n      image: nginx\n      securityContext: {privileged: true}\n"),
}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    for dname in dirs:
        ti = tarfile.TarInfo(dname); ti.type = tarfile.DIRTYPE; ti.mode = 0o777 if dname == "srv" else 0o755; ti.mtime = 0
        t.addfile(ti)
    for pth, (mode, body) in sorted(files.items()):
        data = body.encode("latin-1")
        ti = tarfile.TarInfo(pth); ti.size = len(data); ti.mode = mode; ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
layer = buf.getvalue()
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
hist = [
    "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / ",
    '/bin/sh -c #(nop)  CMD ["bash"]',
    "/bin/sh -c apt-get update",
    "/bin/sh -c apt-get install -y openssh-server curl",
    "/bin/sh -c apt-get dist-upgrade -y",
    "/bin/sh -c apk add curl",
    "/bin/sh -c sudo chmod 777 /srv",
    "/bin/sh -c #(nop) ADD https://example.com/tool.tar.gz /opt/",
    "/bin/sh -c #(nop) ADD file:0f2d1c2b3a4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4 in /srv/ ",
    "/bin/sh -c #(nop)  ENV DB_PASSWORD=hunter2 AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
    "/bin/sh -c #(nop)  EXPOSE 22/tcp 80/tcp",
    '/bin/sh -c #(nop)  VOLUME [/etc]',
]
cfg = {
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "DB_PASSWORD=hunter2", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"],
               "Cmd": ["bash"], "ExposedPorts": {"22/tcp": {}, "80/tcp": {}}, "Volumes": {"/etc": {}}},
    "rootfs": {"type": "layers", "diff_ids": [diff]},
    "history": [dict({"created": "2024-01-01T00:00:00Z", "created_by": h}, **({} if i == 0 else {"empty_layer": True}))
                for i, h in enumerate(hist)],
}
cb = json.dumps(cfg, separators=(",", ":")).encode()
cname = hashlib.sha256(cb).hexdigest() + ".json"
man = json.dumps([{"Config": cname, "RepoTags": ["mamori/misconfig:1"], "Layers": ["layer.tar"]}]).encode()
with tarfile.open(sys.argv[1], "w") as out:
    for n, data in ((cname, cb), ("layer.tar", layer), ("manifest.json", man)):
        ti = tarfile.TarInfo(n); ti.size = len(data); ti.mtime = 0; ti.mode = 0o644
        out.addfile(ti, io.BytesIO(data))
PY

# dockle exits 0 unless --exit-code; trivy 0 unless --exit-code; mamori 0 without --fail-on.
d=$(measure dockle "$DOCKLE" --input "$IMG" -f json)
ti=$(measure trivy-image "$TRIVY" image --input "$IMG" --scanners misconfig --image-config-scanners misconfig --format json "${TRIVY_OPTS[@]}")
mi=$(measure mamori-image "$MAMORI" image --quiet --no-cache --input "$IMG" --scanners misconfig --format json)
tc=$(measure trivy-config "$TRIVY" config --format json "${TRIVY_COMMON[@]}" "$TD")
mc=$(measure mamori-config "$MAMORI" config --quiet --format json "$TD")
bd=$(measure dockle-bad "$DOCKLE" --input "$BADIMG" -f json)
bt=$(measure trivy-bad "$TRIVY" image --input "$BADIMG" --scanners misconfig --image-config-scanners misconfig --format json "${TRIVY_OPTS[@]}")
bm=$(measure mamori-bad "$MAMORI" image --quiet --no-cache --input "$BADIMG" --scanners misconfig --format json)

python3 - "$BENCH_DIR" "$TD" "$d" "$ti" "$mi" "$tc" "$mc" "$bd" "$bt" "$bm" <<'PY'
import json, sys, re, collections
d, td = sys.argv[1], sys.argv[2].rstrip("/") + "/"
rows = [a.split() for a in sys.argv[3:] if a]
res = {r[0]: (float(r[1]), int(r[2]) / 1024) for r in rows if len(r) == 3}
print(f"{'run':<16}{'wall s':>8}{'peak MB':>9}")
for k, (w, m) in res.items():
    print(f"{k:<16}{w:>8.2f}{m:>9.1f}")
for a, b in (("mamori-image", "dockle"), ("mamori-image", "trivy-image"), ("mamori-config", "trivy-config"),
             ("mamori-bad", "dockle-bad"), ("mamori-bad", "trivy-bad")):
    if a in res and b in res:
        print(f"{a}/{b} wall ratio: {res[a][0] / res[b][0]:.3f}")

# Their check -> mamori check(s) that cover it ([] = mamori lacks it).
# Kept in step with the table in bench/README.md.
MAP = {
    # dockle (image)
    "CIS-DI-0001": ["MSC-IMG-001"], "CIS-DI-0005": [], "CIS-DI-0006": ["MSC-IMG-002"],
    "CIS-DI-0007": ["MSC-IMG-003"], "CIS-DI-0008": ["MSC-IMG-008"], "CIS-DI-0009": ["MSC-IMG-004", "MSC-IMG-016"],
    # CIS-DI-0010's credential *files* part is mamori's secret scanner (kind secret)
    "CIS-DI-0010": ["MSC-IMG-005"], "DKL-DI-0001": ["MSC-DF-007"], "DKL-DI-0002": ["MSC-IMG-014"], "DKL-DI-0003": ["MSC-DF-015"],
    "DKL-DI-0004": ["MSC-DF-014"], "DKL-DI-0005": ["MSC-DF-014"], "DKL-DI-0006": ["MSC-IMG-015"], "DKL-LI-0001": ["MSC-IMG-011"], "DKL-LI-0002": ["MSC-IMG-012"],
    "DKL-LI-0003": ["MSC-IMG-013"],
    # trivy Dockerfile (also its image-config scan, which renders the history as a Dockerfile)
    "DS-0001": ["MSC-DF-006"], "DS-0002": ["MSC-DF-001", "MSC-IMG-001"], "DS-0004": ["MSC-DF-012", "MSC-IMG-009"],
    "DS-0005": ["MSC-DF-004", "MSC-IMG-016"], "DS-0006": ["MSC-DF-018"], "DS-0007": ["MSC-DF-017"], "DS-0008": ["MSC-DF-019"], "DS-0009": ["MSC-DF-020"], "DS-0010": ["MSC-DF-007"],
    "DS-0011": ["MSC-DF-022"], "DS-0012": ["MSC-DF-018"], "DS-0013": ["MSC-DF-023"], "DS-0014": ["MSC-DF-024"], "DS-0015": ["MSC-DF-014"], "DS-0016": ["MSC-DF-017"],
    "DS-0017": ["MSC-DF-005", "MSC-IMG-003"], "DS-0019": ["MSC-DF-014"], "DS-0020": ["MSC-DF-014"], "DS-0021": ["MSC-DF-016"], "DS-0022": ["MSC-DF-025"],
    "DS-0023": ["MSC-DF-017"], "DS-0024": ["MSC-DF-015"], "DS-0025": ["MSC-DF-014"], "DS-0026": ["MSC-DF-002", "MSC-IMG-002"], "DS-0027": ["MSC-DF-014"],
    "DS-0029": ["MSC-DF-011"], "DS-0030": ["MSC-DF-021"], "DS-0031": ["MSC-DF-009", "MSC-DF-010", "MSC-IMG-005"],
    # trivy Kubernetes
    "KSV-0001": ["MSC-K8S-016"], "KSV-0002": ["MSC-K8S-010"], "KSV-0003": ["MSC-K8S-020"], "KSV-0004": ["MSC-K8S-020"],
    "KSV-0005": ["MSC-K8S-006"], "KSV-0006": ["MSC-K8S-008"], "KSV-0007": [], "KSV-0008": ["MSC-K8S-003"],
    "KSV-0009": ["MSC-K8S-004"], "KSV-0010": ["MSC-K8S-002"], "KSV-0011": ["MSC-K8S-023"], "KSV-0012": ["MSC-K8S-017"],
    "KSV-0013": ["MSC-K8S-025"], "KSV-0014": ["MSC-K8S-022"], "KSV-0015": ["MSC-K8S-024"], "KSV-0016": ["MSC-K8S-024"],
    "KSV-0017": ["MSC-K8S-001"], "KSV-0018": ["MSC-K8S-023"], "KSV-0020": [], "KSV-0021": [],
    "KSV-0022": ["MSC-K8S-006", "MSC-K8S-021"], "KSV-0023": ["MSC-K8S-007", "MSC-K8S-008"], "KSV-0024": ["MSC-K8S-009"],
    "KSV-0025": ["MSC-K8S-011"], "KSV-0026": ["MSC-K8S-014"], "KSV-0027": ["MSC-K8S-012"], "KSV-0028": ["MSC-K8S-015"],
    "KSV-0030": ["MSC-K8S-019"], "KSV-0036": ["MSC-K8S-026"], "KSV-0037": [], "KSV-0038": [], "KSV-0039": [],
    "KSV-0040": [], "KSV-0041": ["MSC-K8S-031"], "KSV-0042": [], "KSV-0043": ["MSC-K8S-036"], "KSV-0044": ["MSC-K8S-028"], "KSV-0045": ["MSC-K8S-030"], "KSV-0046": ["MSC-K8S-029"],
    "KSV-0047": ["MSC-K8S-033"], "KSV-0048": ["MSC-K8S-034"], "KSV-0049": ["MSC-K8S-035"], "KSV-0050": ["MSC-K8S-036"], "KSV-0051": [], "KSV-0052": [], "KSV-0053": ["MSC-K8S-037"],
    "KSV-0054": ["MSC-K8S-037"], "KSV-0055": [], "KSV-0056": ["MSC-K8S-038"], "KSV-01010": [], "KSV-01011": ["MSC-K8S-040"], "KSV-0102": [],
    "KSV-0103": ["MSC-K8S-005"], "KSV-0104": ["MSC-K8S-013", "MSC-K8S-019"], "KSV-0105": ["MSC-K8S-018"], "KSV-0106": ["MSC-K8S-020", "MSC-K8S-021"],
    "KSV-0107": [], "KSV-0108": [], "KSV-0109": [], "KSV-0110": [], "KSV-0111": ["MSC-K8S-039"], "KSV-0112": ["MSC-K8S-029"], "KSV-0113": ["MSC-K8S-032"],
    "KSV-0114": [], "KSV-0115": [], "KSV-0116": [], "KSV-0117": [], "KSV-0118": [], "KSV-0119": ["MSC-K8S-006"],
    "KSV-0120": ["MSC-K8S-006"], "KSV-0121": ["MSC-K8S-008"], "KSV-0122": ["MSC-K8S-040"], "KSV-0123": ["MSC-K8S-040"], "KSV-0124": [],
    "KSV-0125": [],
}
def canon(i):  # trivy prints DS002/KSV001, AVD-DS-0002 or DS-0002 depending on version
    m = re.match(r"^(?:AVD-)?([A-Z]+)-?0*(\d+)$", i)
    if not m:
        return i
    p, n = m.groups()
    return f"{p}-{int(n):04d}" if p in ("DS", "KSV", "KCV") else i

def rel(p):
    p = p[len(td):] if p.startswith(td) else p
    return p.lstrip("/")

fired = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))  # target -> tool -> id
def load(label, fn):
    try:
        fn(json.load(open(f"{d}/{label}.out")))
    except FileNotFoundError:
        print(f"{label}: no output")
    except Exception as e:
        print(f"{label}: cannot read output: {e}")
def dockle(name):
    def f(r):
        for x in r.get("details") or []:
            if x.get("level") not in ("PASS", "SKIP", "IGNORE"):
                fired[name]["dockle"][x["code"]] += 1
    return f
def trivy(target_of):
    def f(r):
        for res_ in r.get("Results") or []:
            for mc in res_.get("Misconfigurations") or []:
                if mc.get("Status", "FAIL") == "FAIL":
                    fired[target_of(res_)]["trivy"][canon(mc.get("ID") or mc.get("AVDID"))] += 1
    return f
def mamori(target_of):
    def f(r):
        for x in r["findings"]:
            if x["kind"] == "misconfig":
                fired[target_of(x)]["mamori"][x["id"]] += 1
    return f
# Image targets: the config and file-system checks as one target, files that
# are manifests/Dockerfiles inside the image as their own targets.
def in_image(name):
    def t_trivy(res_):  # the image's own config scan is reported under the input path
        t = res_["Target"]
        return name if res_.get("Class") != "config" or t.endswith(".tar") or t == "Dockerfile" else f"{name}:{t.lstrip('/')}"
    def t_mamori(x):
        p = x["location"].get("path", "")
        return f"{name}:{p}" if x.get("category") in ("Kubernetes", "Dockerfile") and p else name
    return t_trivy, t_mamori
for label, name in (("", "<ref image>"), ("-bad", "<misconfig image>")):
    tt, tm = in_image(name)
    load("dockle" + label, dockle(name))
    load("trivy" + ("-image" if not label else label), trivy(tt))
    load("mamori" + ("-image" if not label else label), mamori(tm))
load("trivy-config", trivy(lambda r: rel(r["Target"])))
load("mamori-config", mamori(lambda x: rel(x["location"].get("path", ""))))

missing = collections.Counter()
for target in sorted(fired):
    t = fired[target]
    print(f"\n## {target}")
    for tool in ("dockle", "trivy", "mamori"):
        if t.get(tool):
            print(f"  {tool:<7} " + " ".join(f"{k}{'x' + str(v) if v > 1 else ''}" for k, v in sorted(t[tool].items())))
    for tool in ("dockle", "trivy"):
        for cid in sorted(t.get(tool, {})):
            cover = MAP.get(cid)
            if cover is None:
                note = "UNMAPPED (new check: add it to MAP and the README)"
            elif not cover:
                note = "MISSING in mamori"
                missing[cid] += 1
            else:
                hit = [c for c in cover if c in t.get("mamori", {})]
                note = f"-> {','.join(hit)}" if hit else f"-> {'/'.join(cover)} NOT FIRED here"
            print(f"    {tool} {cid:<12} {note}")
print(f"\npeer checks that fired and mamori lacks: {', '.join(sorted(missing)) or 'none'}")
PY
