"""Helpers for the localjuju runner tests (no tests here): a tiny fake charm with bash hooks."""
import os
import textwrap


HOOKS = [
    'install', 'leader-elected', 'leader-settings-changed', 'config-changed', 'start', 'stop',
    'remove', 'update-status', 'upgrade-charm', 'fail-me', 'pre-series-upgrade',
    'post-series-upgrade', 'slow',
]
for ep in ('peer', 'website', 'certificates', 'docker-registry'):
    for ev in ('created', 'joined', 'changed', 'departed', 'broken'):
        HOOKS.append('%s-relation-%s' % (ep, ev))

COMMON = r'''#!/bin/bash
set -e
h=$(basename "$0")
members=$( [ -n "${JUJU_RELATION_ID:-}" ] &&
          relation-list -r "$JUJU_RELATION_ID" --format=json || true)
echo "$h|${JUJU_RELATION_ID:-}|${JUJU_REMOTE_UNIT:-}|${JUJU_DEPARTING_UNIT:-}|$members" \
  >> "$CHARM_DIR/hooks.log"
case $h in
  install) status-set maintenance installing; juju-log -l INFO "installing in $(pwd)";;
  leader-elected) leader-set secret=s3cr3t;;
  slow) sleep 3;;
  config-changed)
    p=$(config-get port); open-port "$p/TCP"
    status-set active "port $p"
    [ -f /etc/os-release ] && grep ^ID= /etc/os-release >> "$CHARM_DIR/os.log" || true;;
  fail-me)
    status-set blocked "should not stick"; open-port 9999
    for r in $(relation-ids peer --format=json | tr -d '[]",'); do
      relation-set -r "$r" doomed=yes
    done
    exit 3;;
  *-relation-joined|*-relation-changed)
    relation-set -r "$JUJU_RELATION_ID" hello="$JUJU_UNIT_NAME"
    if [ "$JUJU_RELATION" = certificates ]; then
      relation-set -r "$JUJU_RELATION_ID" common_name="$(unit-get private-address)" \
        sans='["127.0.0.11","foo.local"]' unit_name="${JUJU_UNIT_NAME/\//_}"
    fi
    if [ "$JUJU_RELATION" = website ]; then
      relation-set -r "$JUJU_RELATION_ID" port=5000 hostname="$(unit-get private-address)"
    fi;;
esac
'''

METADATA = '''
name: fake
provides:
  website: {interface: http}
  docker-registry: {interface: docker-registry}
requires:
  certificates: {interface: tls-certificates}
peers:
  peer: {interface: fake-peer}
resources:
  img: {type: file, filename: img.tar}
'''

CONFIG = '''
options:
  port: {type: int, default: 5000}
  name: {type: string, default: }
  flag: {type: boolean, default: false}
'''

ACTIONS = '''
echo:
  params:
    n: {type: integer}
    b: {type: boolean, default: true}
    s: {type: string}
    o: {type: object}
fail: {}
'''

ECHO = r'''#!/bin/bash
action-set all="$(action-get --format=json)" nested.deeper.key=v got.n="$(action-get n)"
action-log "logged"
'''

FAIL = r'''#!/bin/bash
action-set partial=yes
action-fail "it broke"
'''


def write_charm(root):
    """A built charm directory (hooks/ present, no layer.yaml)."""
    os.makedirs(os.path.join(root, 'hooks'), exist_ok=True)
    os.makedirs(os.path.join(root, 'actions'), exist_ok=True)
    for name, text in (('metadata.yaml', METADATA), ('config.yaml', CONFIG),
                       ('actions.yaml', ACTIONS)):
        with open(os.path.join(root, name), 'w') as f:
            f.write(textwrap.dedent(text))
    common = os.path.join(root, 'hooks', 'common')
    with open(common, 'w') as f:
        f.write(COMMON)
    os.chmod(common, 0o755)
    for h in HOOKS:
        p = os.path.join(root, 'hooks', h)
        if not os.path.lexists(p):
            os.symlink('common', p)
    for name, text in (('echo', ECHO), ('fail', FAIL)):
        p = os.path.join(root, 'actions', name)
        with open(p, 'w') as f:
            f.write(text)
        os.chmod(p, 0o755)
    return root


def hooks_log(model, unit):
    st = model.load()
    path = os.path.join(st['units'][unit]['charm_dir'], 'hooks.log')
    with open(path) as f:
        return [line.rstrip('\n').split('|') for line in f]
