# shellcheck shell=bash
# Sourced by scripts/test.sh, scripts/run-example.sh and scripts/bench-time.sh.
#
#   slp_ensure_tools COMMAND=DEBIAN_PACKAGE ...
#
# Installs the Debian packages that provide the commands not on PATH: apt-get update, then
# apt-get install, as root (or through passwordless sudo). Fails with a clear message when it
# cannot. Rust (cargo) is not installed here: it must already be present.

slp_ensure_tools() {
    local spec cmd pkg missing=() pkgs=()
    for spec in "$@"; do
        cmd=${spec%%=*}
        pkg=${spec#*=}
        if ! command -v "$cmd" >/dev/null 2>&1; then
            missing+=("$cmd")
            [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "not found: ${missing[*]}; installing the Debian packages ${pkgs[*]}"
    _slp_apt_install "${missing[*]}" "${pkgs[@]}" || return 1
    for cmd in "${missing[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || { echo "error: '$cmd' still not found after installing ${pkgs[*]}" >&2; return 1; }
    done
}

# slp_ensure_files FILE=DEBIAN_PACKAGE ...: the same for files (headers, libraries) rather
# than commands, e.g. slp_ensure_files /usr/include/boost/fiber/all.hpp=libboost-fiber-dev
slp_ensure_files() {
    local spec file pkg missing=() pkgs=()
    for spec in "$@"; do
        file=${spec%%=*}
        pkg=${spec#*=}
        if [ ! -e "$file" ]; then
            missing+=("$file")
            [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "not found: ${missing[*]}; installing the Debian packages ${pkgs[*]}"
    _slp_apt_install "${missing[*]}" "${pkgs[@]}" || return 1
    for file in "${missing[@]}"; do
        [ -e "$file" ] || { echo "error: '$file' still not found after installing ${pkgs[*]}" >&2; return 1; }
    done
}

# _slp_apt_install WHAT PACKAGE...: apt-get update + install as root or through passwordless
# sudo; WHAT names what is missing, for the messages.
_slp_apt_install() {
    local what=$1
    shift
    local pkgs=("$@")
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "error: $what not found, and this is not root (no passwordless sudo either)." >&2
            echo "       Install them first:  sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $what not found and there is no apt-get: install ${pkgs[*]} yourself." >&2
        return 1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
}

# Rust and a C compiler are prerequisites, not installed by these scripts.
slp_require_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
            PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
            export PATH
        else
            echo "error: cargo not found: install Rust (https://rustup.rs) first." >&2
            return 1
        fi
    fi
}

# The Cargo.toml [package] version, e.g. 0.1.0.
slp_cargo_version() {
    sed -n 's/^version *= *"\([0-9][0-9.]*\)".*/\1/p' "$1/Cargo.toml" | head -n 1
}
