#!/bin/bash
# Deploys the charm on this machine through the local runner (localjuju plays the Juju
# agent), the way an air-gapped site would: the unit's fresh Docker engine has no image,
# so the charm loads registry:2 from the registry-image resource. Leaves the registry
# running and prints how to use it. Extra arguments go to `localjuju deploy`, e.g.
#   scripts/deploy-local.sh --config auth-basic-password=s3cret
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/bootstrap.sh
archive=${LOCALJUJU_HOME:-/var/lib/localjuju}/registry-image.tar
mkdir -p "$(dirname "$archive")"
bash scripts/build-registry-image.sh registry:2 "$archive" >/dev/null
# The charm users get: built with charm-tools and the upstream layers (scripts/build-charm.sh),
# reused while its inputs are unchanged.
charm=$("${LOCALJUJU_VENV:-/opt/docker-registry-venv}/bin/python" -m tests.support.charm_build)
bin/localjuju deploy "$charm" docker-registry --resource "registry-image=$archive" "$@"
bin/localjuju status
netloc=$(bin/localjuju status --format json | "${LOCALJUJU_VENV:-/opt/docker-registry-venv}/bin/python" -c '
import json, sys
unit = json.load(sys.stdin)["applications"]["docker-registry"]["units"]["docker-registry/0"]
print(unit["workload-status"]["message"].split()[2])')
cat <<MSG

The registry serves at http://$netloc (unit docker-registry/0, its own Docker engine).
  curl http://$netloc/v2/_catalog
  docker tag registry:2 $netloc/demo/registry:2 && docker push $netloc/demo/registry:2
  docker pull $netloc/demo/registry:2
With auth (bin/localjuju config docker-registry auth-basic-password=...):
  docker login $netloc -u admin --password-stdin < password-file
Image actions (on the registry itself):
  bin/localjuju run docker-registry/0 images
  bin/localjuju run docker-registry/0 push image=$netloc/demo/registry:2 tag=copies/registry:2
  bin/localjuju run docker-registry/0 export images=demo/registry path=/root/demo.tar
Stop and start: bin/localjuju run docker-registry/0 stop | start
Remove everything: bin/localjuju destroy
MSG
