"""Image references, naming rules and image lists (registry_refs, pure)."""
from pathlib import Path

import pytest

from charms.layer import registry_refs as refs

ROOT = Path(__file__).resolve().parents[2]
CK = ROOT / 'tests' / 'support' / 'ck_images'  # copies of the real Charmed Kubernetes lists


@pytest.mark.parametrize('text,expected', [
    ('nginx', (None, 'nginx', None, None)),
    ('nginx:1.18', (None, 'nginx', '1.18', None)),
    ('library/nginx:1.18', (None, 'library/nginx', '1.18', None)),
    ('rocks.canonical.com/cdk/pause:3.9', ('rocks.canonical.com', 'cdk/pause', '3.9', None)),
    ('127.0.0.1:5000/a/b', ('127.0.0.1:5000', 'a/b', None, None)),
    ('localhost/x:y', ('localhost', 'x', 'y', None)),
    ('q.io/a@sha256:' + 'a' * 64, ('q.io', 'a', None, 'sha256:' + 'a' * 64)),
    ('q.io/a:t@sha256:' + 'b' * 64, ('q.io', 'a', 't', 'sha256:' + 'b' * 64)),
])
def test_parse_valid(text, expected):
    assert tuple(refs.parse(text)) == expected


@pytest.mark.parametrize('text', [
    '', ' nginx', 'nginx ', 'a b', 'foo;rm -rf /', '$(reboot)', '`id`', 'a|b', 'a&&b',
    'Upper', 'repo:bad tag', 'repo:-x', 'repo@sha256:123', 'repo@md5:' + 'a' * 32,
    'host:99999999/x', 'a//b', 'a/', '/a', 'x' * 600, 'a\nb', None, 5,
])
def test_parse_rejects(text):
    with pytest.raises(refs.InvalidReference) as error:
        refs.parse(text)
    assert 'invalid' in str(error.value)


def test_source_location_completes_docker_hub():
    assert refs.source_location(refs.parse('nginx:1')) == ('registry-1.docker.io',
                                                           'library/nginx')
    assert refs.source_location(refs.parse('docker.io/org/app')) == ('registry-1.docker.io',
                                                                     'org/app')
    assert refs.source_location(refs.parse('q.io/one')) == ('q.io', 'one')


def test_destination_keeps_source_path_like_the_old_charm():
    ref = refs.parse('rocks.canonical.com/cdk/pause:3.9')
    assert refs.destination(ref) == 'rocks.canonical.com/cdk/pause'
    assert refs.destination(ref, strip_host=True) == 'cdk/pause'
    assert refs.destination(ref, strip_host=True, prefix='/mirror/') == 'mirror/cdk/pause'
    assert refs.destination(refs.parse('127.0.0.1:5000/a:1')) == '127.0.0.1-5000/a'
    assert refs.destination(refs.parse('nginx')) == 'nginx'
    with pytest.raises(refs.InvalidReference):
        refs.destination(ref, prefix='Bad Prefix')


def test_own_name_drops_our_netloc():
    assert refs.own_name('198.51.100.1:5000/a/b:1', '198.51.100.1:5000') == (None, 'a/b', '1', None)
    assert refs.own_name('a/b', '198.51.100.1:5000') == (None, 'a/b', None, None)
    assert refs.own_name('rocks.canonical.com/cdk/x:1', 'h:1').path == \
        'rocks.canonical.com/cdk/x'


def test_image_list_plain_and_ck_format():
    text = '''# comment
a.io/one:1 a.io/two:2
a.io/one:1
v1.29-static: k8s.gcr.io/pause-{{ arch }}:3.1 b.io/c{{ multiarch_workaround }}:1.0
v1.12-static: k8s.gcr.io/old:1
empty-label:
bad;ref
x.io/{{ nope }}:1
'''
    found, problems = refs.parse_image_list(text, arches=['amd64', 'arm64'])
    assert found == ['a.io/one:1', 'a.io/two:2', 'k8s.gcr.io/pause-amd64:3.1',
                     'k8s.gcr.io/pause-arm64:3.1', 'b.io/c:1.0', 'k8s.gcr.io/old:1']
    assert len(problems) == 2
    assert problems[0].startswith('line 7') and problems[1].startswith('line 8')
    only, _ = refs.parse_image_list(text, arches=['amd64'], sections=['v1.29-*'])
    assert only == ['a.io/one:1', 'a.io/two:2', 'k8s.gcr.io/pause-amd64:3.1', 'b.io/c:1.0']


def test_real_charmed_kubernetes_lists_parse_cleanly():
    found, problems = refs.parse_image_list((CK / 'v1.35.3.txt').read_text())
    assert problems == [] and len(found) >= 40
    assert all(r.startswith('rocks.canonical.com/cdk/') for r in found)
    found, problems = refs.parse_image_list((CK / 'container-images.txt').read_text())
    assert problems == [], problems[:5]
    assert 'k8s.gcr.io/pause-s390x:3.1' in found
    assert not any('{{' in r for r in found)
    one, _ = refs.parse_image_list((CK / 'container-images.txt').read_text(),
                                   sections=['v1.29.0-*'])
    assert 0 < len(one) < len(found)


def test_split_list_and_matches():
    assert refs.split_list('a, b\nc  d,') == ['a', 'b', 'c', 'd']
    assert refs.split_list('') == []
    assert refs.matches('cdk/pause', 'cdk/*') and not refs.matches('x/pause', 'cdk/*')
    assert refs.matches('anything', '')
