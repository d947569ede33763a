#!/usr/bin/env bash
# bench/traces/record.sh: regenerates the traces in this folder.
#
#   bench/traces/record.sh synthetic   # deterministic: the same files every time
#   bench/traces/record.sh real        # needs strace, g++, git, /usr/bin/python3;
#                                      # depends on the machine and the tree
#
# synth_*.trace come from //bench/gen:trace_gen with fixed seeds; real_*.trace
# are strace recordings of real programs converted by bench/strace_to_trace.py.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out="$top/bench/traces"
cd "$top"

synthetic() {
  bazel build //bench/gen:trace_gen
  local gen
  gen="$(bazel info bazel-bin)/bench/gen/trace_gen"
  "$gen" --kind=uniform --ops=40000 --seed=1 >"$out/synth_uniform.trace"
  "$gen" --kind=heavy --ops=40000 --seed=1 >"$out/synth_heavy_tail.trace"
  "$gen" --kind=phases --ops=40000 --seed=1 >"$out/synth_phases.trace"
  "$gen" --kind=l4re --ops=40000 --seed=1 >"$out/synth_l4re_system.trace"
}

# record NAME COMMENT COMMAND...: straces COMMAND and converts the output.
record() {
  local name=$1 comment=$2
  shift 2
  local tmp
  tmp=$(mktemp /tmp/strace.XXXXXX)
  strace -f -e trace=mmap,munmap,mremap,brk,execve -o "$tmp" "$@" >/dev/null
  python3 bench/strace_to_trace.py "$tmp" -o "$out/$name.trace" --comment="$comment"
  rm -f "$tmp"
}

real() {
  local obj
  obj=$(mktemp /tmp/obj.XXXXXX)
  record real_gcc_build "g++ -O2 compiling five files of this project, one after the other" \
    sh -c "for f in bench/replay.cc bench/trace.cc bench/fragmentation_main.cc \
             backends/buddy/buddy_backend.cc tests/backends/conformance_test.cc; do
             g++ -O2 -std=c++17 -I. -c \$f -o $obj; done"
  rm -f "$obj"
  record real_git_log "git log -p --stat -n 400 in this repository" \
    git log -p --stat -n 400
  record real_shell_pipeline "cat /usr/include/*.h ... | tr | sort | uniq -c | sort -rn | head" \
    sh -c 'cat /usr/include/*.h /usr/include/*/*.h | tr -cs A-Za-z "\n" | sort | uniq -c | sort -rn | head -5'
  local script
  script=$(mktemp /tmp/pywork.XXXXXX.py)
  cat >"$script" <<'PY'
# Compiles the Python standard library (ASTs and code objects built and
# dropped), counts its names, and round-trips the counts through JSON.
import ast, collections, glob, json
words = collections.Counter()
codes = []
for i, path in enumerate(sorted(glob.glob("/usr/lib/python3.11/**/*.py", recursive=True))):
    with open(path, errors="replace") as f:
        text = f.read()
    try:
        tree = ast.parse(text)
        codes.append(compile(tree, path, "exec"))
    except (SyntaxError, ValueError):
        continue
    words.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    if i % 40 == 39:
        json.loads(json.dumps(words.most_common()))
        codes = codes[-5:]
print(len(codes), len(words))
PY
  record real_python_compile "python3 compiling the standard library (script in bench/traces/record.sh)" \
    /usr/bin/python3 "$script"
  rm -f "$script"
}

case "${1:-}" in
  synthetic) synthetic ;;
  real) real ;;
  *) echo "usage: $0 synthetic|real" >&2; exit 2 ;;
esac
