#!/bin/bash
# Installs everything the local runner and the tests need on a Debian 12 / Ubuntu machine,
# as root, and starts the Docker engine when none answers. Idempotent.
#   - Debian packages: the Docker engine, the Distribution registry binary (source of the
#     local registry:2 image), the clients the tests use (skopeo, ctr, curl, haproxy,
#     monitoring plugins), python3-bcrypt (what a unit gets from Ubuntu).
#   - A venv at $LOCALJUJU_VENV from the system python with system packages visible, as
#     layer:basic builds on a unit, filled from wheelhouse.txt built from sdists with no
#     Rust toolchain on PATH (a unit has none).
#   - moto_server (S3-compatible test server) in its own venv at $MOTO_VENV.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${LOCALJUJU_VENV:-/opt/docker-registry-venv}
export DEBIAN_FRONTEND=noninteractive

packages=(docker.io docker-registry skopeo containerd haproxy curl openssl
          monitoring-plugins-basic monitoring-plugins-standard python3-venv python3-bcrypt
          util-linux iproute2
          # what layer:basic's bootstrap apt-installs on every unit: units share this
          # machine's dpkg, so they find them installed
          python3-pip python3-setuptools python3-virtualenv python3-yaml python3-dev
          python3-wheel build-essential virtualenv
          # what the existing charm needs from an Ubuntu machine (the switch test deploys
          # it): apache2-utils (its layer:apt installs it), lspci (layer:docker looks for GPUs)
          apache2-utils pciutils)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    # No systemd here: start the engine by hand, without a bridge or iptables rules
    # (everything the tests run uses host networking on loopback addresses).
    mkdir -p /var/log
    setsid dockerd --bridge=none --iptables=false --ip6tables=false \
        >/var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
fi

# Made again only when wheelhouse.txt or this recipe changes (charms.reactive cannot even be
# imported off Ubuntu, so importing is no test of the venv).
venv_recipe="$(sha256sum "$here/wheelhouse.txt" | cut -d' ' -f1) pytest pytest-xdist mock charms.unit_test flake8"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.recipe" 2>/dev/null)" != "$venv_recipe" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    # Build every wheelhouse.txt entry from its sdist with no cargo/rustc reachable, as on a
    # unit. Their dependencies and build tools come as wheels, as the built charm ships them:
    # `--no-binary :all:` would also compile Cython from source (2 min) for PyYAML's build.
    norust_path=$(echo "$PATH" | tr ':' '\n' | grep -v -e cargo -e rustup | paste -sd:)
    entries=$(sed -e 's/#.*//' -e 's/[=<>!~; ].*//' "$here/wheelhouse.txt" | grep . | paste -sd,)
    PATH=$norust_path "$venv/bin/pip" install -q 'setuptools<82' wheel
    PATH=$norust_path "$venv/bin/pip" install -q --no-binary "$entries" -r "$here/wheelhouse.txt"
    "$venv/bin/pip" install -q pytest pytest-xdist mock charms.unit_test flake8
    echo "$venv_recipe" > "$venv/.recipe"
fi
# moto_server, the S3-compatible server of the storage tests, in a venv of its own: its
# dependencies (Flask, Jinja2 3, ...) would replace the charm's pinned ones.
moto_venv=${MOTO_VENV:-/opt/moto-venv}
if [ ! -x "$moto_venv/bin/moto_server" ]; then
    /usr/bin/python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install -q 'moto[server]==5.2.5'
fi
echo "bootstrap: packages, dockerd, $venv and $moto_venv ready"
