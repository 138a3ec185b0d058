"""Stand-in for interface:nrpe-external-master's provides side
(``NrpeExternalMasterProvides``, canonical/nrpe-external-master-interface):
an old-style ``RelationBase`` with global scope.

* ``{relation_name}.available`` set in -relation-joined/-changed hooks,
  removed in -relation-departed/-broken hooks.
* ``add_check(args, name=None, description=None, context=None,
  servicegroups=None, unit=None)`` writes
  ``/etc/nagios/nrpe.d/check_<name>.cfg`` (``command[<name>]=<args joined
  by spaces>``) and the Nagios service definition
  ``/var/lib/nagios/export/service__<unit with - for />_<name>.cfg``
  (host ``<nagios_host_context or context>-<unit>`` unless the remote
  published ``nagios_hostname``); files are remembered for ``removed()``.
  Unlike upstream, missing directories are created (here no nrpe
  subordinate creates them beforehand).
* ``added()`` / ``updated()`` publish a ``timestamp``; ``removed()``
  deletes the remembered files.
"""
import datetime
import os

from charmhelpers.core import hookenv
from charms.reactive import RelationBase, hook, scopes

CHECK_DIR = '/etc/nagios/nrpe.d'
EXPORT_DIR = '/var/lib/nagios/export'

_BANNER = ('#---------------------------------------------------\n'
           '# This file is Juju managed\n'
           '#---------------------------------------------------\n')


class NrpeExternalMasterProvides(RelationBase):
    scope = scopes.GLOBAL

    @hook('{provides:nrpe-external-master}-relation-{joined,changed}')
    def changed_nrpe(self):
        self.set_state('{relation_name}.available')

    @hook('{provides:nrpe-external-master}-relation-{broken,departed}')
    def broken_nrpe(self):
        self.remove_state('{relation_name}.available')

    def add_check(self, args, name=None, description=None, context=None,
                  servicegroups=None, unit=None):
        files = self.get_local('nagios.check.files', [])
        unit = (unit or hookenv.local_unit()).replace('/', '-')
        context = self.get_remote('nagios_host_context', context)
        host_name = self.get_remote('nagios_hostname',
                                    '{}-{}'.format(context, unit))
        check_file = os.path.join(CHECK_DIR, 'check_{}.cfg'.format(name))
        service_file = os.path.join(
            EXPORT_DIR, 'service__{}_{}.cfg'.format(unit, name))
        for directory in (CHECK_DIR, EXPORT_DIR):
            os.makedirs(directory, exist_ok=True)
        with open(check_file, 'w') as fp:
            fp.write('\n' + _BANNER + 'command[{}]={}\n'.format(
                name, ' '.join(args)))
        with open(service_file, 'w') as fp:
            fp.write('\n' + _BANNER + (
                'define service {{\n'
                '    use                             active-service\n'
                '    host_name                       {host}\n'
                '    service_description             {desc}\n'
                '    check_command                   check_nrpe!{name}\n'
                '    servicegroups                   {groups}\n'
                '}}\n').format(host=host_name, desc=description, name=name,
                               groups=servicegroups or context))
        files += [check_file, service_file]
        self.set_local('nagios.check.files', files)

    def removed(self):
        for path in self.get_local('nagios.check.files', []):
            try:
                os.unlink(path)
            except OSError as exc:
                hookenv.log('failed to remove {}: {}'.format(path, exc))
        self.set_local('nagios.check.files', [])
        self.remove_state('{relation_name}.removed')

    def added(self):
        self.updated()

    def updated(self):
        self.set_remote(timestamp=datetime.datetime.now().isoformat())
