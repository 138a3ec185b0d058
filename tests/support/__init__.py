"""Test assets for the docker-registry charm's tests (no network beyond 127.0.0.0/8).

Modules
  images      pure-Python OCI layouts: LayerSpec, build_image, build_index, push,
              standard_set (the test corpus), images_for_refs (CK-style ref lists)
  upstream    UpstreamRegistry: Debian's docker-registry binary as a subprocess
              (auth, TLS, client certs, proxy), plus registry_digest/list_tags/platforms
  skopeo      skopeo CLI wrappers (copy, inspect_raw, registry_digest, list_tags, ...)
  ca          TestCA: openssl-made CA, server/client certificates, certs.d dirs
  containers  build/save the local registry:2 image (scripts/build-registry-image.sh),
              run it with --network host
  fixtures    pytest fixtures (import * from a conftest.py)
"""
