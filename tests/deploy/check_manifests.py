#!/usr/bin/python3
"""check_manifests.py NODE.yaml ETCD.yaml [--emit-sh FILE]

Field checks of the rendered Kubernetes manifests (kubectl kustomize of
deploy/kubernetes and deploy/kubernetes/etcd) that a schema does not make:
the DaemonSet's probes, limits, security context, host paths, metrics and
rolling update; the etcd StatefulSet's quorum, service and budget; that
the ConfigMap's members are that StatefulSet's pods.  One line per check,
"ok ..." or "FAIL ..."; exit 1 if any failed.

--emit-sh FILE writes what test_kubernetes.sh runs on its hosts, read out of
the DaemonSet: the container's command and args, its environment (the
ConfigMap's and its own), the probes' commands, the metrics port and the
mount paths of the shared run directory and of the cluster key.
"""
import re
import shlex
import sys

import yaml

failed = 0


def check(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what)
    failed += 0 if cond else 1
    return cond


def quantity(q):
    """Bytes of a Kubernetes memory quantity (16Gi, 512Mi, 18G...)."""
    m = re.fullmatch(r"(\d+)([KMGTE]i?)?", str(q))
    if not m:
        return -1
    mult = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return int(m.group(1)) * mult.get(m.group(2), -1)


def ucache_size(s):
    """Bytes of a UCACHE_MEM value (K/M/G/T suffixes, powers of two)."""
    m = re.fullmatch(r"(\d+)([KMGT]?)", str(s))
    if not m:
        return -1
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d.get("kind") == kind and
             (name is None or d["metadata"]["name"].startswith(name))]
    return found[0] if found else None


def main():
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--emit-sh"):
        print(__doc__, file=sys.stderr)
        return 2
    node, etcd = load(sys.argv[1]), load(sys.argv[2])
    ds = one(node, "DaemonSet", "ucached")
    if not check(ds is not None, "a DaemonSet ucached"):
        return 1
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c.get("command", []) + c.get("args", [])
    cm_name = c["envFrom"][0]["configMapRef"]["name"]
    cm = one(node, "ConfigMap", cm_name)
    data = cm["data"] if cm else {}
    env = dict(data)
    fieldrefs = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "fieldRef" in e.get("valueFrom", {}):
            fieldrefs[e["name"]] = e["valueFrom"]["fieldRef"]["fieldPath"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}

    check(ds["metadata"].get("namespace") == "ucache", "the DaemonSet is in namespace ucache")
    check(pod.get("hostNetwork") is True, "host networking (RDMA devices, the node's address)")
    check(pod.get("dnsPolicy") == "ClusterFirstWithHostNet",
          "dnsPolicy ClusterFirstWithHostNet: the etcd service names resolve on the host network")
    st = ds["spec"].get("updateStrategy", {})
    ru = st.get("rollingUpdate", {})
    check(st.get("type") == "RollingUpdate" and str(ru.get("maxUnavailable")) == "1" and
          str(ru.get("maxSurge", 0)) == "0",
          "rolling update, one node at a time (maxUnavailable 1, maxSurge 0)")
    ip_vars = [n for n, f in fieldrefs.items() if f == "status.hostIP"]
    check(len(ip_vars) == 1 and
          re.fullmatch(r"\$\(%s\):\d+" % ip_vars[0], env.get("UCACHE_LISTEN", "")) is not None,
          "UCACHE_LISTEN is the node's IP (status.hostIP) and a port: etcd names nodes by it")
    check(pod.get("terminationGracePeriodSeconds", 30) >= 30,
          "a grace period for SIGTERM's unregister and drain")
    check(cm is not None, "envFrom names the generated ConfigMap " + cm_name)

    # metrics
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    port = args[args.index("--metrics-port") + 1] if "--metrics-port" in args else None
    check(port is not None and ann.get("prometheus.io/scrape") == "true" and
          ann.get("prometheus.io/port") == port and ann.get("prometheus.io/path") == "/metrics",
          "Prometheus scrape annotations name the --metrics-port %s" % port)
    check("--metrics-addr" in args and args[args.index("--metrics-addr") + 1] == "0.0.0.0",
          "the metrics listen on the node's addresses (--metrics-addr 0.0.0.0)")

    # security context
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    check(caps.get("add") == ["IPC_LOCK"] and "ALL" in caps.get("drop", []),
          "capabilities: all dropped but IPC_LOCK (mlock of the cache memory)")
    check(not sc.get("privileged", False) and sc.get("allowPrivilegeEscalation") is False,
          "not privileged, no privilege escalation")
    check(sc.get("readOnlyRootFilesystem") is True, "read-only root file system")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")

    # probes
    rp = c.get("readinessProbe", {}).get("exec", {}).get("command", [])
    lp = c.get("livenessProbe", {}).get("exec", {}).get("command", [])
    check(rp[:3] == ["ucache", "health", "--local"],
          "readiness: ucache health --local (exit 0 only when this node is ok)")
    check(len(lp) == 3 and lp[:2] == ["/bin/sh", "-c"] and "ucache health --local" in lp[2] and
          "-lt 2" in lp[2], "liveness: ucache health --local, failing only when broken (exit 2)")
    for name, p in (("readiness", c.get("readinessProbe", {})),
                    ("liveness", c.get("livenessProbe", {}))):
        check(p.get("timeoutSeconds", 1) >= 3, name + " probe timeout >= 3 s")

    # memory
    mem = ucache_size(data.get("UCACHE_MEM", ""))
    req = quantity(c["resources"]["requests"].get("memory", ""))
    lim = quantity(c["resources"]["limits"].get("memory", ""))
    check(mem > 0 and req == lim and lim >= mem + (1 << 30),
          "memory request = limit (%s) >= UCACHE_MEM (%s) + 1 GiB" %
          (c["resources"]["limits"].get("memory"), data.get("UCACHE_MEM")))

    # the cluster key, the shared run directory, the devices
    kf = env.get("UCACHE_CLUSTER_KEY_FILE", "")
    kdir, kitem = kf.rsplit("/", 1) if "/" in kf else ("", "")
    km = mounts.get(kdir)
    kv = vols.get(km["name"]) if km else None
    sec = one(node, "Secret", kv["secret"]["secretName"]) if kv and "secret" in kv else None
    check(sec is not None and kitem in sec.get("data", {}) and km.get("readOnly") is True and
          kv["secret"].get("defaultMode") == 0o400,
          "UCACHE_CLUSTER_KEY_FILE is %s of the Secret, mounted read-only, mode 0400" % kitem)
    rd = env.get("UCACHE_MAP_DIR", "")
    rm = mounts.get(rd)
    rv = vols.get(rm["name"]) if rm else None
    check(rv is not None and rv.get("hostPath", {}).get("path") == rd and
          rv["hostPath"].get("type") == "DirectoryOrCreate",
          "UCACHE_MAP_DIR %s is the node's own (hostPath): the training pods mount it too" % rd)
    ib = mounts.get("/dev/infiniband")
    check(ib is not None and vols[ib["name"]].get("hostPath", {}).get("path") == "/dev/infiniband",
          "/dev/infiniband from the node, where it has one")
    check(vols.get(mounts.get("/dev/shm", {}).get("name"), {}).get("emptyDir", {}).get("medium")
          == "Memory", "/dev/shm: memory, sized for UCX's shared-memory segments")

    # etcd: a quorum the members URL names
    sts = one(etcd, "StatefulSet", "ucache-etcd")
    svc = one(etcd, "Service", "ucache-etcd")
    pdb = one(etcd, "PodDisruptionBudget", "ucache-etcd")
    if check(sts is not None and svc is not None, "an etcd StatefulSet and its Service"):
        n = sts["spec"]["replicas"]
        ec = sts["spec"]["template"]["spec"]["containers"][0]
        ic = [a for a in ec["args"] if a.startswith("--initial-cluster=")]
        check(n % 2 == 1 and n >= 3, "etcd: an odd number of members (%d)" % n)
        check(sts["spec"]["serviceName"] == svc["metadata"]["name"] and
              svc["spec"].get("clusterIP") == "None" and
              {p["port"] for p in svc["spec"]["ports"]} == {2379, 2380},
              "etcd: a headless service for its client and peer ports")
        check(len(ic) == 1 and len(ic[0].split("=", 1)[1].split(",")) == n,
              "etcd: --initial-cluster lists its %d members" % n)
        check(pdb is not None and pdb["spec"].get("maxUnavailable") == 1,
              "etcd: a disruption budget that keeps the quorum")
        check(all(k in ec for k in ("readinessProbe", "livenessProbe", "resources")) and
              "limits" in ec["resources"], "etcd: probes and resource limits")
        check(bool(sts["spec"].get("volumeClaimTemplates")), "etcd: its data on a volume")
        want = ",".join("%s-%d.%s.%s.svc:2379" % (sts["metadata"]["name"], i,
                                                   svc["metadata"]["name"], "ucache")
                        for i in range(n))
        check(data.get("UCACHE_MEMBERS", "").startswith("etcd://" + want + "/"),
              "UCACHE_MEMBERS names the etcd StatefulSet's %d pods" % n)

    if len(sys.argv) == 5:
        q = lambda v: " ".join(shlex.quote(str(x)) for x in v)
        with open(sys.argv[4], "w") as f:
            f.write("DS_CMD=(%s)\n" % q(args))
            f.write("DS_ENV=(%s)\n" % q("%s=%s" % kv for kv in sorted(env.items())))
            f.write("DS_FIELDREFS=(%s)\n" % q("%s=%s" % kv for kv in sorted(fieldrefs.items())))
            f.write("DS_READY=(%s)\n" % q(rp))
            f.write("DS_LIVE=(%s)\n" % q(lp))
            f.write("DS_METRICS_PORT=%s\n" % shlex.quote(port or ""))
            f.write("DS_RUN_DIR=%s\n" % shlex.quote(rd))
            f.write("DS_KEY_DIR=%s\n" % shlex.quote(kdir))
            f.write("DS_GRACE=%d\n" % pod.get("terminationGracePeriodSeconds", 30))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
