"""The README names options without copying config.yaml: each option it names must exist."""
import os
import re

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Option names start with one of these (actions' parameters and runner flags do not).
OPTION_FAMILIES = ('auth-', 'cache-', 'container-', 'debug-', 'http-', 'listen-', 'log-',
                   'nagios_', 'prometheus-', 'registry-', 'storage-', 'tls-')


def test_every_option_the_readme_names_exists():
    with open(os.path.join(REPO, 'config.yaml')) as f:
        options = set(yaml.safe_load(f)['options'])
    with open(os.path.join(REPO, 'metadata.yaml')) as f:
        metadata = yaml.safe_load(f)
    other_names = set(metadata['resources']) | set(metadata['storage'])
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    named = {name for name in re.findall(r'`([a-z][a-z0-9_-]+)(?:=[^`]*)?`', text) +
             re.findall(r'\b([a-z][a-z0-9_-]+)=', text) if name.startswith(OPTION_FAMILIES)}
    assert named, 'the README names no option: the check proved nothing'
    assert sorted(named - options - other_names) == []
