#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tools/kernel-matrix.sh [options] [KERNEL[:user]...]     (default: 5.10 6.1 6.12)
#   Runs the whole meson suite on each kernel in turn: boots a Debian kernel under QEMU
#   with kernel-run.sh, copies the tree in, builds it there as root and runs
#   `meson test`. Then prints one table, test x kernel -> OK / FAIL / SKIP, the cases
#   that failed or skipped with the reason they printed, and per kernel the totals and
#   the time taken. KERNEL is what kernel-run.sh takes (5.10, 6.1, 6.12, a package name,
#   a .deb) or `host` (this machine's kernel, no VM). KERNEL:user runs `meson test` as
#   an unprivileged user with the guest's RLIMIT_MEMLOCK (64 KiB), which 5.10 charges
#   ring memory to.
# Options:
#   --user        run every KERNEL as KERNEL:user
#   --host-build  build once on this host and only test in the guests (much faster under
#                 TCG; needs a host with the guest's userland: Debian 12, as CI)
#   --src DIR     the tree to test (default: this script's repository); of a git tree
#                 only tracked and untracked-but-not-ignored files (no build folders)
#   --rev REV     test `git archive REV` of that tree instead of its working files
#   --out DIR     keep logs and testlogs there (default: a new /tmp/kernel-matrix.XXXXXX)
#   --verbose     stream each guest's output here too (else only in DIR/runs/KERNEL/log)
#   --report      run nothing: print the table again from the runs in --out DIR
# Environment: KRUN (the harness; default ../shared/tools/kernel-run.sh beside the
#   repository), KM_TIMEOUT (s per kernel, 3000), KM_TIMEOUT_MULT (meson test -t, 4),
#   KM_EXTRA_PKGS (guest packages beyond the harness's; default: those bootstrap.sh
#   installs that the harness image lacks), KM_MESON_ARGS (more `meson test` args).
# Exit: 0 every test passed or skipped; 1 a test failed, or the build failed; 125 no
#   failure, but the harness gave no results for some kernel (timeout, boot failure).
# Last line: "kernel-matrix: N passed, N failed, N skipped, N harness errors".
set -uo pipefail

me=kernel-matrix
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here rev="" out="" verbose=0 report=0 all_user=0 host_build=0 kernels=()
usage() { sed -n '3,/^# Last line/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --user) all_user=1 ;;
    --host-build) host_build=1 ;;
    --src) src=$(cd "${2:?--src needs a folder}" && pwd) || exit 2; shift ;;
    --rev) rev=${2:?--rev needs a revision}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --verbose) verbose=1 ;;
    --report) report=1 ;;
    -h|--help) usage 0 ;;
    -*) echo "$me: unknown option $1" >&2; usage 2 ;;
    *) kernels+=("$1") ;;
  esac
  shift
done

if [ $report = 1 ]; then
  [ -f "${out:-}/kernels" ] || { echo "$me: --report needs --out DIR of an earlier run" >&2; exit 2; }
  out=$(cd "$out" && pwd)
  mapfile -t kernels <"$out/kernels"
else
  [ ${#kernels[@]} -gt 0 ] || kernels=(5.10 6.1 6.12)
  if [ $all_user = 1 ]; then
    for i in "${!kernels[@]}"; do [[ ${kernels[i]} == *:user ]] || kernels[i]+=:user; done
  fi
  command -v python3 >/dev/null || { echo "$me: needs python3 (for meson's testlog.json)" >&2; exit 125; }
  krun=${KRUN:-}
  if [ -z "$krun" ]; then
    for k in "$here/../shared/tools/kernel-run.sh" "$src/../shared/tools/kernel-run.sh" \
             /work/shared/tools/kernel-run.sh "$(command -v kernel-run.sh)"; do
      [ -n "$k" ] && [ -x "$k" ] && { krun=$k; break; }
    done
  fi
  for k in "${kernels[@]}"; do
    if [ "${k%:user}" != host ] && [ ! -x "$krun" ]; then
      echo "$me: kernel-run.sh not found (set KRUN=/path/to/kernel-run.sh)" >&2; exit 125
    fi
  done
  # The guest needs what the suite uses. The harness image has most of it; the rest is
  # bootstrap.sh's list minus the harness's, in bootstrap's order (a stable image hash).
  if [ -z "${KM_EXTRA_PKGS+x}" ]; then
    KM_EXTRA_PKGS=$(
      packages=()
      eval "$(sed -n '/^packages=(/,/)/p' "$src/bootstrap.sh" 2>/dev/null)"
      have=" g++ meson ninja-build pkg-config cmake lua5.4 liblua5.4-dev doctest-dev lua-socket"
      have+=" python3 liburing-dev lua-luv kmod iproute2 procps strace "
      for p in "${packages[@]}"; do [[ $have == *" $p "* ]] || printf '%s ' "$p"; done)
    KM_EXTRA_PKGS=${KM_EXTRA_PKGS% }
  fi

  [ -n "$out" ] || out=$(mktemp -d /tmp/kernel-matrix.XXXXXX) || exit 125
  mkdir -p "$out" || exit 125
  out=$(cd "$out" && pwd)
  rm -rf "$out/runs" "$out/host-build.meta"
  printf '%s\n' "${kernels[@]}" >"$out/kernels"

  # A clean copy of the tree: no build folders, nothing of the host's builds.
  stage=$out/src
  rm -rf "$stage"; mkdir -p "$stage"
  if [ -n "$rev" ]; then
    git -C "$src" archive --format=tar "$rev" | tar -x -C "$stage" ||
      { echo "$me: git archive $rev failed" >&2; exit 125; }
    desc="$rev = $(git -C "$src" rev-parse --short "$rev")"
  elif git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # $f is the inner shell's
    (cd "$src" && git ls-files -z -co --exclude-standard |
       xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
       tar --null -T - -cf -) | tar -x -C "$stage" || { echo "$me: cannot copy $src" >&2; exit 125; }
    desc=$(git -C "$src" rev-parse --short HEAD)
    [ -n "$(git -C "$src" status --porcelain)" ] && desc+=" + working-tree changes"
  else
    cp -a "$src/." "$stage/" || exit 125
    desc="not a git tree"
  fi
  echo "$src ($desc)" >"$out/what"
  echo "$me: testing $src ($desc) on ${kernels[*]}; logs in $out"
fi

# The command run in the guest (or, for `host`, here): build as root into /tmp/b, or
# use the host's build ($2: its folder, reached at the host's path through a symlink
# to /src when $3 = 1); test as root or as user km ($1 = 1); print the testlog gzipped
# and base64'd on one line "KM-TESTLOG ...". 90: meson setup failed, 91: the build
# failed, 92: the guest setup failed.
# shellcheck disable=SC2016  # what it prints is expanded in the guest
guest_cmd() {
  local b=${2:-/tmp/b}
  echo 'echo "KM-UNAME $(uname -r)"; t0=$SECONDS'
  if [ -z "$2" ]; then
    echo "meson setup $b >$b.setup.log 2>&1 || { tail -n 60 $b.setup.log; exit 90; }"
    echo "ninja -C $b >$b.build.log 2>&1 || { grep -m 20 -A 3 error: $b.build.log || tail -n 60 $b.build.log; exit 91; }"
    echo 'echo "KM-BUILD $((SECONDS - t0))"'
  elif [ "$3" = 1 ]; then
    echo "mkdir -p '${stage%/*}' && ln -sfn /src '$stage' || exit 92"
  fi
  echo 'as=()'
  [ "$1" = 1 ] && cat <<EOS
useradd -m -U km && chown -R km:km '$b/' /src/ || exit 92
as=(setpriv --reuid=km --regid=km --init-groups env HOME=/home/km USER=km LOGNAME=km)
EOS
  cat <<EOS
echo "KM-USER \$("\${as[@]}" id -un) memlock \$("\${as[@]}" bash -c 'ulimit -l')"
t1=\$SECONDS
"\${as[@]}" meson test -C '$b' --no-rebuild --print-errorlogs --no-suite bench-command -t ${KM_TIMEOUT_MULT:-4} ${KM_MESON_ARGS:-} 2>&1
rc=\$?
echo "KM-TEST \$((SECONDS - t1))"
[ -f '$b/meson-logs/testlog.json' ] && echo "KM-TESTLOG \$(gzip -c '$b/meson-logs/testlog.json' | base64 -w0)"
exit \$rc
EOS
}

# --host-build: one build here for every kernel (the binaries do not depend on it).
do_host_build() {
  local t0=$SECONDS
  echo "$me: building on this host ($stage/_build)"
  if ! { meson setup "$stage/_build" "$stage" && ninja -C "$stage/_build"; } >"$out/host-build.log" 2>&1; then
    grep -m 20 -A 3 error: "$out/host-build.log" || tail -n 30 "$out/host-build.log"
    echo "$me: the host build failed (see $out/host-build.log)"
    echo "host_build=failed" >"$out/host-build.meta"
    return 1
  fi
  echo "host_build=$((SECONDS - t0))" >"$out/host-build.meta"
}

run_one() {  # $1 = kernel spec; fills $out/runs/<spec>/{log,meta,testlog.json}
  local spec=$1 k=${1%:user} user=0 d rc t0 prebuilt=""
  [[ $spec == *:user ]] && user=1
  [ $host_build = 1 ] && prebuilt=$stage/_build
  d=$out/runs/${spec//[^A-Za-z0-9._+-]/_}
  rm -rf "$d"; mkdir -p "$d"
  t0=$SECONDS
  echo "$me: [$spec] started $(date +%H:%M:%S)"
  if [ "$k" = host ]; then
    if [ $user = 1 ]; then echo "host:user is not supported" >"$d/raw"; rc=125
    else
      [ -n "$prebuilt" ] || mkdir -p "$d/b"
      (cd "$stage" && bash -c "$(guest_cmd 0 "${prebuilt:-$d/b}" 0)") >"$d/raw" 2>"$d/err"
      rc=$?
    fi
  else
    local cmd; cmd=$(guest_cmd $user "$prebuilt" 1)
    if [ $verbose = 1 ]; then
      KRUN_TIMEOUT=${KM_TIMEOUT:-3000} KRUN_EXTRA_PKGS=$KM_EXTRA_PKGS "$krun" "$k" "$stage" "$cmd" \
        </dev/null 2>"$d/err" | tee "$d/raw" | grep --line-buffered -v '^KM-TESTLOG ' >&2
      rc=${PIPESTATUS[0]}
    else
      KRUN_TIMEOUT=${KM_TIMEOUT:-3000} KRUN_EXTRA_PKGS=$KM_EXTRA_PKGS "$krun" "$k" "$stage" "$cmd" \
        </dev/null >"$d/raw" 2>"$d/err"
      rc=$?
    fi
  fi
  grep '^KM-TESTLOG ' "$d/raw" | tail -n 1 | cut -d' ' -f2 | base64 -d 2>/dev/null | gunzip -c \
    >"$d/testlog.json" 2>/dev/null || rm -f "$d/testlog.json"
  [ -s "$d/testlog.json" ] || rm -f "$d/testlog.json"
  { grep -v '^KM-TESTLOG ' "$d/raw"; cat "$d/err"; } >"$d/log"; rm -f "$d/raw" "$d/err"
  { echo "rc=$rc"; echo "wall=$((SECONDS - t0))"; echo "spec=$spec"; } >"$d/meta"
  echo "$me: [$spec] done in $(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s (exit $rc)"
}

if [ $report = 0 ]; then
  if [ $host_build = 1 ]; then
    # shellcheck disable=SC1091
    os=$(. /etc/os-release 2>/dev/null; echo "${ID:-}:${VERSION_ID:-}")
    if [ "$os" != debian:12 ]; then   # the guests run Debian 12's userland
      echo "$me: this host is $os, not debian:12: building in each guest instead"
      host_build=0
    fi
  fi
  if [ $host_build = 1 ] && ! do_host_build; then
    echo "kernel-matrix: 0 passed, 1 failed, 0 skipped, 0 harness errors"; exit 1
  fi
  for k in "${kernels[@]}"; do run_one "$k"; done
fi

# The table.
python3 - "$out" <<'PY' | tee "$out/table.txt"
import json, os, re, sys
out = sys.argv[1]
specs = [l.strip() for l in open(os.path.join(out, "kernels")) if l.strip()]
BAD = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}
def mmss(s): return "%dm%02ds" % (s // 60, s % 60)
def rd(p, default=""):
    try: return open(p, errors="replace").read()
    except OSError: return default
hb = dict(l.split("=", 1) for l in rd(os.path.join(out, "host-build.meta")).split() if "=" in l)

runs = []
for spec in specs:
    d = os.path.join(out, "runs", re.sub(r"[^A-Za-z0-9._+-]", "_", spec))
    meta = dict(l.split("=", 1) for l in rd(os.path.join(d, "meta")).splitlines() if "=" in l)
    log = rd(os.path.join(d, "log"))
    r = {"spec": spec, "rc": int(meta.get("rc", 125)), "wall": int(meta.get("wall", 0)),
         "tests": {}, "notes": [], "log": log}
    m = re.search(r"^KM-UNAME (\S+)", log, re.M); r["uname"] = m.group(1) if m else "?"
    for key in ("BUILD", "TEST"):
        m = re.search(r"^KM-%s (\d+)" % key, log, re.M); r[key.lower()] = int(m.group(1)) if m else None
    m = re.search(r"^KM-USER (\S+) memlock (\S+)", log, re.M); r["user"] = m.groups() if m else None
    tl = os.path.join(d, "testlog.json")
    for line in rd(tl).splitlines():
        if not line.strip(): continue
        t = json.loads(line)
        name = re.sub(r"^[^:]*:", "", t["name"])          # drop the project name
        res, text = t["result"], t.get("stdout") or ""
        r["tests"][name] = res
        failing = res in BAD
        lines = text.splitlines()
        for i, l in enumerate(lines):
            if l.startswith("FAIL ") and l.endswith(": exit status 1"):   # say where and why
                why = next((re.sub(r"^\s*\S*lua5\.4: (\S*/)?", "", x) for x in lines[i + 1:i + 4]
                            if re.search(r"\.lua:\d+: ", x)), None)
                if why: l = l[:-len("exit status 1")] + why
            if res == "SKIP" and l.startswith("SKIP: "):
                r["notes"].append("%s: SKIP: %s" % (name, l[6:]))
            elif l.startswith("skip "):                     # helper.run_cases
                r["notes"].append("%s: case %s" % (name, l))
            elif l.startswith("FAIL "):
                r["notes"].append("%s: case %s" % (name, l[:220]))
        # doctest: blocks between "=====" lines, each naming its TEST CASE
        for block in re.split(r"\n={20,}\n", text):
            m = re.search(r"^TEST CASE:\s+(.*)$", block, re.M)
            if not m: continue
            tc = m.group(1).strip()
            skip = re.search(r"MESSAGE: skipped: (.*)$", block, re.M)
            err = re.search(r"^(\S+:\d+): (?:FATAL )?ERROR: (.*)$", block, re.M)
            if err:
                vals = re.search(r"^\s+values: (.*)$", block[err.end():], re.M)
                r["notes"].append("%s: FAIL %s: %s %s%s" % (name, tc, err.group(1), err.group(2)[:150],
                                  " [%s]" % vals.group(1) if vals else ""))
            elif skip:
                r["notes"].append("%s: skip %s: %s" % (name, tc, skip.group(1)[:150]))
        if failing and not any(n.startswith(name + ": ") and "skip" not in n for n in r["notes"]):
            tail = [l for l in text.splitlines() if l.strip()][-4:]
            r["notes"] += ["%s: %s | %s" % (name, res, l[:220]) for l in tail] or ["%s: %s" % (name, res)]
    if r["tests"]: r["status"] = "ran"
    elif r["rc"] == 90: r["status"] = "meson setup failed"
    elif r["rc"] == 91: r["status"] = "build failed"
    elif r["rc"] == 124: r["status"] = "harness: timed out (KM_TIMEOUT)"
    else: r["status"] = "harness: no results (exit %d)" % r["rc"]
    runs.append(r)

print("kernel matrix of " + rd(os.path.join(out, "what"), "?\n").strip())
names = sorted({n for r in runs for n in r["tests"]}, key=lambda n: (not n.startswith("core"), n))
heads = ["%s (%s)" % (r["spec"], r["uname"]) for r in runs]
ws = [max(len(h), 7) for h in heads]
# A suite of more than 5 tests with one result everywhere is one row (the full table
# is in table-full.txt).
rows, full, done = [], [], set()
for n in names:
    cells = [r["tests"].get(n, "-") for r in runs]
    full.append((n, cells))
    suite = n.split(" / ")[0]
    if suite in done: continue
    same = [m for m in names if m.split(" / ")[0] == suite]
    allc = {c for m in same for c in (r["tests"].get(m, "-") for r in runs)}
    if len(same) > 5 and len(allc) == 1:
        rows.append(("%s / (%d tests)" % (suite, len(same)), [allc.pop()] * len(runs)))
        done.add(suite)
    else:
        rows.append((n, cells))
def table(rows):
    w0 = max([len(n) for n, _ in rows] + [4])
    t = [("%-*s  %s" % (w0, "test", "  ".join("%-*s" % (w, h) for w, h in zip(ws, heads)))).rstrip(),
         "%s  %s" % ("-" * w0, "  ".join("-" * w for w in ws))]
    t += [("%-*s  %s" % (w0, n, "  ".join("%-*s" % (w, c) for w, c in zip(ws, cells)))).rstrip()
          for n, cells in rows]
    return "\n".join(t)
open(os.path.join(out, "table-full.txt"), "w").write(table(full) + "\n")
print(table(rows))
print()
if hb: print("host build: " + (mmss(int(hb["host_build"])) if hb.get("host_build", "").isdigit() else hb.get("host_build", "?")))
tot = {"passed": 0, "failed": 0, "skipped": 0, "harness": 0}
for r in runs:
    res = list(r["tests"].values())
    ok, skip = res.count("OK") + res.count("EXPECTEDFAIL"), res.count("SKIP")
    bad = sum(1 for x in res if x in BAD)
    t = "%s: %d OK, %d FAIL, %d SKIP" % (r["spec"], ok, bad, skip)
    if r["status"] != "ran": t += "; " + r["status"]
    t += "; %s in all" % mmss(r["wall"])
    parts = []
    if r["build"] is not None: parts.append("build %s" % mmss(r["build"]))
    if r["test"] is not None: parts.append("meson test %s" % mmss(r["test"]))
    if parts: t += " (" + ", ".join(parts) + ")"
    if r["user"]: t += "; tests ran as %s, RLIMIT_MEMLOCK %s KiB" % r["user"]
    print(t)
    tot["passed"] += ok; tot["skipped"] += skip; tot["failed"] += bad
    if r["status"].startswith("harness"): tot["harness"] += 1
    elif r["status"] != "ran": tot["failed"] += 1         # our build is broken there
for r in runs:
    if r["notes"] or r["status"] != "ran":
        print("\n[%s] %s" % (r["spec"], r["uname"]))
        for n in r["notes"]: print("  " + n)
        if r["status"] != "ran":
            print("  %s; the log ends:" % r["status"])
            for l in r["log"].splitlines()[-15:]: print("    " + l[:220])
print("\nkernel-matrix: %(passed)d passed, %(failed)d failed, %(skipped)d skipped, %(harness)d harness errors" % tot)
open(os.path.join(out, "totals"), "w").write("%(passed)d %(failed)d %(skipped)d %(harness)d\n" % tot)
PY
read -r _ f _ h <"$out/totals" 2>/dev/null || exit 125
[ "$f" -gt 0 ] && exit 1
[ "$h" -gt 0 ] && exit 125
exit 0
