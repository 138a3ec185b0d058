#!/usr/bin/env python3
"""Finish a `charm build` of this layer: drop the included layers' development files, and
replace the wheelhouse's sdists by universal wheels where PyPI has them.

charm-tools copies every file of every included layer; layer.yaml's `exclude` only covers
this layer's, and `ignore` only the layer right below it. So layer:basic's and
layer:status's development files (Makefile, tox.ini, requirements.txt, constraints-*.txt,
.github, docs, ...) would ship in the charm: they are removed here.

`charm build` fills the wheelhouse with sdists, and layer:basic builds every one of them on
each unit (Cython alone twice: once for itself, once in PyYAML's build environment): minutes
before the first hook runs. A pure-Python project's universal wheel (`py3-none-any`) of the
same version installs unchanged on every Python 3 a unit runs (3.10, 3.12) and on this build
machine's, with no compiler. Projects that publish no such wheel (compiled ones: PyYAML,
MarkupSafe; sdist-only ones) keep their sdist.

.build.manifest is updated to match both changes.

Usage: finish-build.py CHARM_DIR   (needs PyPI, like `charm build` itself)
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


# Development files of the included layers (layer:basic, layer:status, layer:leadership).
LAYER_DEVELOPMENT_FILES = ('.github', '.gitignore', 'Makefile', 'constraints-juju29.txt',
                           'constraints-juju3.txt', 'docs', 'make_docs', 'pydocmd.yml',
                           'requirements.txt', 'tox.ini')


def drop_layer_development_files(charm_dir, signatures):
    for name in LAYER_DEVELOPMENT_FILES:
        path = os.path.join(charm_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        for key in [k for k in signatures if k == name or k.startswith(name + '/')]:
            del signatures[key]


def sdists(wheelhouse):
    """[(file name, project, version)] of the sdists in the wheelhouse."""
    found = []
    for name in sorted(os.listdir(wheelhouse)):
        match = re.match(r'^(.+)-([^-]+)\.(tar\.gz|zip)$', name)
        if match:
            found.append((name, match.group(1), match.group(2)))
    return found


def universal_wheel(project, version, dest):
    """Download project==version's universal wheel into dest; its file name, or None."""
    before = set(os.listdir(dest))
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary',
         ':all:', '--platform', 'any', '--implementation', 'py', '--abi', 'none',
         '--python-version', '3.10', '--dest', dest, '%s==%s' % (project, version)],
        capture_output=True, text=True, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    added = sorted(set(os.listdir(dest)) - before)
    return added[0] if proc.returncode == 0 and added else None


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def swap_universal_wheels(wheelhouse, signatures):
    with tempfile.TemporaryDirectory() as downloads:
        for name, project, version in sdists(wheelhouse):
            wheel = universal_wheel(project, version, downloads)
            if wheel is None:
                print('kept sdist %s' % name, file=sys.stderr)
                continue
            os.rename(os.path.join(downloads, wheel), os.path.join(wheelhouse, wheel))
            os.unlink(os.path.join(wheelhouse, name))
            old = signatures.pop('wheelhouse/' + name)
            signatures['wheelhouse/' + wheel] = [old[0], old[1],
                                                 sha256(os.path.join(wheelhouse, wheel))]
            print('%s -> %s' % (name, wheel), file=sys.stderr)


def main(charm_dir):
    manifest_path = os.path.join(charm_dir, '.build.manifest')
    with open(manifest_path) as f:
        manifest = json.load(f)
    drop_layer_development_files(charm_dir, manifest['signatures'])
    swap_universal_wheels(os.path.join(charm_dir, 'wheelhouse'), manifest['signatures'])
    with open(manifest_path + '.tmp', 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    os.replace(manifest_path + '.tmp', manifest_path)


if __name__ == '__main__':
    main(sys.argv[1])
