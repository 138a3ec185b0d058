"""Model state on disk: one JSON document per model, written atomically under an flock.

Layout of $LOCALJUJU_HOME/models/<model>/:
  state.json        apps, units, machines, relations, leadership, config, statuses, ports,
                    actions, resources, scripted remote apps
  model.lock        flock guarding every read-modify-write of state.json
  locks/<unit>.lock flock held while a hook or action runs on that unit
  contexts/         one JSON file per hook/action invocation (pending, uncommitted writes)
  tools/            symlinks named after every hook tool, all pointing at hooktool.py
  logs/<unit>.log   hook output and juju-log lines
  machines/<n>/     per-machine mount sources, daemon logs and pid files
  apps/<app>/charm  the charm built for an application; units/<unit>/charm per-unit copies
"""
import contextlib
import fcntl
import json
import os
import tempfile
import time
import uuid

DEFAULT_HOME = '/var/lib/localjuju'


def home_dir(home=None):
    return home or os.environ.get('LOCALJUJU_HOME') or DEFAULT_HOME


def model_dir(home=None, model=None):
    return os.path.join(home_dir(home), 'models', model or 'local')


def atomic_write(path, data, mode=0o644):
    """Write text (or bytes) to path through a temp file + rename."""
    d = os.path.dirname(path) or '.'
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp-' + os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data.encode('utf-8') if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True))


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def flock(path, shared=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def empty_state(name):
    return {
        'model': name,
        'uuid': str(uuid.uuid4()),
        'apps': {},
        'units': {},
        'machines': {},
        'next_machine': 0,
        'relations': {},
        'next_relation': 0,
        'remotes': {},
        'actions': {},
        'next_action': 1,
    }


class Store:
    """Access to one model's state directory."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.state_file = os.path.join(self.path, 'state.json')
        self.lock_file = os.path.join(self.path, 'model.lock')

    def exists(self):
        return os.path.exists(self.state_file)

    def load(self):
        st = read_json(self.state_file)
        if st is None:
            raise FileNotFoundError('no model state at %s' % self.path)
        return st

    def save(self, st):
        write_json(self.state_file, st)

    @contextlib.contextmanager
    def transaction(self):
        """Exclusive read-modify-write of state.json."""
        with flock(self.lock_file):
            st = self.load()
            yield st
            self.save(st)

    def init(self, name):
        os.makedirs(self.path, exist_ok=True)
        with flock(self.lock_file):
            if not self.exists():
                self.save(empty_state(name))

    def unit_lock(self, unit):
        return flock(os.path.join(self.path, 'locks', unit.replace('/', '-') + '.lock'))

    def sub(self, *parts):
        return os.path.join(self.path, *parts)

    def log_path(self, unit):
        """The unit's log: hook output, juju-log lines and the runner's notes."""
        return self.sub('logs', unit.replace('/', '-') + '.log')

    def log(self, unit, line):
        path = self.log_path(unit)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'a') as f:
            f.write('%s %s\n' % (time.strftime('%Y-%m-%d %H:%M:%S'), line))


# ---- helpers shared by the runner and the hook tools -------------------------------

def rel_num(rid):
    """'website:3' or '3' or 3 -> '3' (the key used in state['relations'])."""
    s = str(rid)
    return s.rsplit(':', 1)[-1]


def rel_id_for(st, num, app):
    """The relation id as seen by app ('<its endpoint>:<n>')."""
    rel = st['relations'][str(num)]
    return '%s:%s' % (rel['endpoints'][app], num)


def app_of(unit):
    return unit.split('/')[0]


def by_number(records):
    """(number, record) pairs of relations or machines (keyed '0', '1', ...), oldest first."""
    return sorted(records.items(), key=lambda kv: int(kv[0]))


def unit_sort_key(unit):
    """'app/10' after 'app/9'."""
    a, _, n = unit.partition('/')
    return (a, int(n) if n.isdigit() else 0)


def merged(bag, changes):
    """bag with changes applied, where None deletes the key (what relation-set and
    leader-set record for an empty value)."""
    out = dict(bag)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def unit_display_status(u):
    """(status, message) shown for a unit: the hook error wins over the workload status."""
    if u.get('hook_error'):
        return 'error', 'hook failed: "%s"' % u['hook_error']
    ws = u.get('workload') or {}
    return ws.get('status', 'unknown'), ws.get('message', '')
