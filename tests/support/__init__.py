"""Every helper the tests share (conftest.py files hold only fixtures). pytest.ini puts the
repository, tools/ (localjuju) and lib/ (charms.layer) on the import path.

Modules
  deployment  APP, Deployment (a model deployed through localjuju, its units' machines),
              port_free, free_port_pair (ports for a deployment's registry)
  clients     http_get, skopeo (the CLI as a user runs it), pulled_digest
  fixtures    pytest fixtures (import * from a conftest.py): charm_path, registry images,
              corpora, upstream registries, test_ca
  charm_build built_charm(): the charm built by scripts/build-charm.sh, reused while its
              inputs are unchanged (`python -m tests.support.charm_build`)
  fake_charm  write_charm(): a tiny charm with bash hooks, for the runner's own tests
  registry_testlib  the unit tests' config defaults, FakeDocker and run(config) (needs
              the unit tests' conftest set-up: charmhelpers patched for Ubuntu)
  images      pure-Python OCI layouts: LayerSpec, build_image, build_index, push,
              standard_set (the test corpus), images_for_refs (CK-style ref lists)
  upstream    UpstreamRegistry: Debian's docker-registry binary as a subprocess
              (auth, TLS, client certs, proxy), plus registry_digest/list_tags/platforms
  skopeo      skopeo CLI wrappers (copy, inspect_raw, registry_digest, list_tags, ...)
  ca          TestCA: openssl-made CA, server/client certificates, certs.d dirs
  containers  build/save the local registry:2 image (scripts/build-registry-image.sh),
              run it with --network host
  containerd, haproxy, forward_proxy, s3server, probe
              the real services around the charm (PrivateContainerd, HAProxy,
              ForwardProxy, MotoS3Server) and Prober/http_check for availability
"""
