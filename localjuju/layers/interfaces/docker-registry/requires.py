"""Stand-in for interface:docker-registry's requires side
(``DockerRegistryRequires``), minimal.

Flag ``endpoint.{endpoint_name}.ready`` while ``registry_netloc`` has been
received (toggled on changed, which it then clears; cleared when not
joined).  Properties read the merged JSON data of all joined units:
registry_netloc, registry_url, basic_user, basic_password, tls_ca;
has_auth_basic(), has_custom_url(), has_tls(), is_ready.
"""
from charms.reactive import Endpoint, clear_flag, toggle_flag, when, when_not


class DockerRegistryRequires(Endpoint):

    @property
    def _received(self):
        return self.all_joined_units.received

    @when('endpoint.{endpoint_name}.changed')
    def check_ready(self):
        toggle_flag(self.expand_name('ready'), self.is_ready)
        clear_flag(self.expand_name('changed'))

    @when_not('endpoint.{endpoint_name}.joined')
    def remove_ready(self):
        clear_flag(self.expand_name('ready'))

    def has_auth_basic(self):
        return self.basic_user is not None and \
            self.basic_password is not None

    def has_custom_url(self):
        return self.registry_url is not None

    def has_tls(self):
        return self.tls_ca is not None

    @property
    def is_ready(self):
        return self.registry_netloc is not None

    registry_netloc = property(lambda s: s._received.get('registry_netloc'))
    registry_url = property(lambda s: s._received.get('registry_url'))
    basic_user = property(lambda s: s._received.get('basic_user'))
    basic_password = property(lambda s: s._received.get('basic_password'))
    tls_ca = property(lambda s: s._received.get('tls_ca'))
