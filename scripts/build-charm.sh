#!/bin/bash
# Builds the charm users get: `charm build` (charm-tools, pinned, from PyPI) of this layer
# with the real upstream layers and interfaces. Usage: scripts/build-charm.sh [OUT_DIR [LAYER_DIR]]
# (default $CHARM_BUILD_DIR, else /tmp/charm-builds, as charm build's own; charm-tools refuses
# one inside this checkout); the charm lands in OUT_DIR/<its name>, whose path is printed.
# LAYER_DIR (default: this checkout) builds another top layer the same way: the switch test
# builds the existing charm's src/ (tests/support/charm_build.py unpacks it elsewhere).
#   - Online, the layers come from the layer index, as `charm build` does.
#   - Offline, when ../shared/upstream exists (or $UPSTREAM_DIR names such a folder of
#     unmodified `git archive`s: layer-X.tar.gz, interface-Y.tar.gz), they are unpacked into
#     charm-tools' own CHARM_LAYERS_DIR / CHARM_INTERFACES_DIR and the layer index is an
#     unreachable loopback URL, so every include resolves from there.
# Then scripts/finish-build.py drops the included layers' development files and replaces every
# sdist of the wheelhouse whose project publishes a universal wheel of that version by it.
# charm-tools needs `virtualenv` on PATH and setuptools<82 (pkg_resources) in its venv.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-${CHARM_BUILD_DIR:-/tmp/charm-builds}}")
tools_venv=${CHARM_TOOLS_VENV:-/opt/charm-tools-venv}
upstream=${UPSTREAM_DIR:-$here/../shared/upstream}
layer=$(realpath "${2:-$here}")
charm_name=$(sed -n 's/^name: *//p' "$layer/metadata.yaml" | head -n1)

# Locked: scripts/test.sh builds this charm and the existing one at the same time.
exec 9>"$tools_venv.lock"
flock 9
if ! "$tools_venv/bin/charm-build" --help >/dev/null 2>&1; then
    /usr/bin/python3 -m venv "$tools_venv"
    # setuptools>=80: the pkg_resources of the venv's own setuptools (66 on Debian 12) cannot
    # find distributions whose metadata uses normalized names (ruamel.yaml.clib 0.2.15 and
    # later), and charm-build then fails at import.
    "$tools_venv/bin/pip" install -q 'charm-tools==3.0.9' 'setuptools>=80,<82' 'virtualenv<21'
fi
flock -u 9
export PATH="$tools_venv/bin:$PATH"

args=()
if [ -d "$upstream" ]; then
    layers=$(mktemp -d)
    trap 'rm -rf "$layers"' EXIT
    mkdir -p "$layers/layers" "$layers/interfaces"
    for archive in "$upstream"/layer-*.tar.gz "$upstream"/interface-*.tar.gz; do
        name=$(basename "$archive" .tar.gz)
        case $name in
            layer-*) dest=$layers/layers/${name#layer-} ;;
            interface-*) dest=$layers/interfaces/${name#interface-} ;;
        esac
        mkdir -p "$dest"
        tar -xzf "$archive" -C "$dest"
    done
    export CHARM_LAYERS_DIR=$layers/layers CHARM_INTERFACES_DIR=$layers/interfaces
    args+=(--layer-index http://127.0.0.1:9/)
fi

mkdir -p "$out"
cd "$layer"
charm-build "${args[@]}" --force -o "$out" . >&2
# Without the included layers' development files; units install the wheelhouse in seconds
# instead of minutes (see the script).
"$tools_venv/bin/python" "$here/scripts/finish-build.py" "$out/$charm_name"
echo "$out/$charm_name"
