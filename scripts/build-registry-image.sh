#!/bin/bash
# Build a local Distribution registry image FROM scratch out of Debian's
# docker-registry binary, so that tests (and air-gapped hosts) never need to
# pull `registry:2` from a remote registry.
#
# Usage: scripts/build-registry-image.sh [--distribution-3-layout] [--force]
#                                        [TAG] [ARCHIVE]
#   TAG      image tag to build (default registry:2, or registry:3 with
#            --distribution-3-layout)
#   ARCHIVE  optional path: `docker save` the image there (skipped when the
#            archive already holds this very image)
#   --distribution-3-layout
#            lay the image out like registry 3.x images: config read from
#            /etc/distribution/config.yml (the binary is still Debian's 2.8)
#   --force  rebuild even when an identical image already exists
#
# Environment: REGISTRY_BINARY (default /usr/bin/docker-registry),
#              DOCKER (default docker), DOCKER_HOST is honoured by docker.
#
# Idempotent: the image carries a label with a checksum of everything that
# goes into it (binary, libraries, config, layout); when an image with the
# same tag and checksum exists nothing is built.
set -euo pipefail

RECIPE_VERSION=1
LABEL_KEY=io.github.docker-registry-charm.test-image.recipe-sha256
LAYOUT=2
FORCE=0
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --distribution-3-layout) LAYOUT=3 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; args+=("$@"); break ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) args+=("$1") ;;
    esac
    shift
done
if [ "$LAYOUT" = 3 ]; then DEFAULT_TAG=registry:3; else DEFAULT_TAG=registry:2; fi
# a lone argument ending in .tar is the archive (tag left at its default)
if [ "${#args[@]}" -eq 1 ] && [[ "${args[0]}" == *.tar ]]; then
    args=("$DEFAULT_TAG" "${args[0]}")
fi
TAG="${args[0]:-$DEFAULT_TAG}"
ARCHIVE="${args[1]:-}"
BINARY="${REGISTRY_BINARY:-/usr/bin/docker-registry}"
DOCKER="${DOCKER:-docker}"

log() { echo "build-registry-image: $*" >&2; }

[ -x "$BINARY" ] || { log "registry binary $BINARY not found (apt-get install docker-registry)"; exit 1; }

if [ "$LAYOUT" = 3 ]; then
    CONFIG_PATH=/etc/distribution/config.yml
else
    CONFIG_PATH=/etc/docker/registry/config.yml
fi

CONFIG_YML='version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
'

# Shared libraries the binary needs, as ldd resolves them (paths of the
# libraries plus the program interpreter), following symlinks so that both
# the link name and its target end up in the image.
libs() {
    ldd "$BINARY" | awk '
        /=>/ { if ($3 ~ /^\//) print $3; next }
        $1 ~ /^\// { print $1 }'
}
mapfile -t LIBS < <(libs)
if [ "${#LIBS[@]}" -eq 0 ]; then
    log "note: $BINARY looks statically linked"
fi

CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# Checksum of every input of the recipe.
recipe_sum() {
    {
        echo "recipe=$RECIPE_VERSION layout=$LAYOUT config_path=$CONFIG_PATH"
        sha256sum "$BINARY" | cut -d' ' -f1
        for l in "${LIBS[@]}"; do
            echo "$l $(sha256sum "$(readlink -f "$l")" | cut -d' ' -f1)"
        done
        [ -f "$CA_BUNDLE" ] && sha256sum "$CA_BUNDLE" | cut -d' ' -f1
        printf '%s' "$CONFIG_YML"
    } | sha256sum | cut -d' ' -f1
}
SUM="$(recipe_sum)"

existing_sum() {
    "$DOCKER" image inspect "$1" \
        --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" 2>/dev/null || true
}

if [ "$FORCE" = 0 ] && [ "$(existing_sum "$TAG")" = "$SUM" ]; then
    log "$TAG is up to date (recipe $SUM)"
else
    CTX="$(mktemp -d /tmp/build-registry-image.XXXXXX)"
    trap 'rm -rf "$CTX"' EXIT
    ROOT="$CTX/rootfs"
    mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/var/lib/registry" \
             "$ROOT/etc/ssl/certs" "$(dirname "$ROOT$CONFIG_PATH")"
    chmod 1777 "$ROOT/tmp"
    cp "$BINARY" "$ROOT/bin/registry"
    chmod 0755 "$ROOT/bin/registry"
    for l in "${LIBS[@]}"; do
        # copy the file under its resolved name, and under the name the
        # loader looks for when that is a symlink
        real="$(readlink -f "$l")"
        mkdir -p "$ROOT$(dirname "$real")" "$ROOT$(dirname "$l")"
        cp -L "$real" "$ROOT$real"
        if [ "$real" != "$l" ] && [ ! -e "$ROOT$l" ] && [ ! -L "$ROOT$l" ]; then
            ln -s "$real" "$ROOT$l"
        fi
    done
    [ -f "$CA_BUNDLE" ] && cp "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
    printf '%s' "$CONFIG_YML" > "$ROOT$CONFIG_PATH"
    printf 'root:x:0:0:root:/root:/bin/registry\nnobody:x:65534:65534:nobody:/nonexistent:/bin/registry\n' > "$ROOT/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"
    printf 'hosts: files dns\n' > "$ROOT/etc/nsswitch.conf"

    cat > "$CTX/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
LABEL $LABEL_KEY="$SUM" \\
      io.github.docker-registry-charm.test-image.layout="$LAYOUT" \\
      org.opencontainers.image.title="distribution registry (local build of Debian's docker-registry)"
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "$CONFIG_PATH"]
EOF
    log "building $TAG (layout $LAYOUT, recipe $SUM)"
    # the legacy builder is enough for FROM scratch + COPY; its deprecation
    # notice is only shown when the build fails
    if ! DOCKER_BUILDKIT=0 "$DOCKER" build --quiet --tag "$TAG" "$CTX" \
            >"$CTX/build.log" 2>&1; then
        cat "$CTX/build.log" >&2
        exit 1
    fi
    rm -rf "$CTX"
    trap - EXIT
fi

if [ -n "$ARCHIVE" ]; then
    IMAGE_ID="$("$DOCKER" image inspect "$TAG" --format '{{.Id}}')"
    HEX="${IMAGE_ID#sha256:}"
    if [ -s "$ARCHIVE" ] \
        && tar -xOf "$ARCHIVE" manifest.json 2>/dev/null | grep -q "$HEX" \
        && tar -xOf "$ARCHIVE" manifest.json 2>/dev/null | grep -qF "\"$TAG\""; then
        log "$ARCHIVE already holds $TAG ($IMAGE_ID)"
    else
        mkdir -p "$(dirname "$ARCHIVE")"
        TMP_ARCHIVE="$ARCHIVE.tmp.$$"
        "$DOCKER" save -o "$TMP_ARCHIVE" "$TAG"
        chmod 0644 "$TMP_ARCHIVE"
        mv -f "$TMP_ARCHIVE" "$ARCHIVE"
        log "saved $TAG ($IMAGE_ID) to $ARCHIVE"
    fi
fi
