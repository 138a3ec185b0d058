"""Stand-in for interface:docker-registry's provides side
(``DockerRegistryProvides``, juju-solutions/interface-docker-registry).

``set_registry_config(registry_netloc, **kwargs)`` publishes
``registry_netloc`` and every keyword (e.g. registry_url, basic_user,
basic_password, tls_ca) JSON-encoded (``to_publish``) on every relation.
Image-request handshake: on ``endpoint.{endpoint_name}.changed`` the flag
``endpoint.{endpoint_name}.requests-pending`` is toggled by whether any
joined unit's request is unanswered (no ``image`` published yet on its
relation) and ``endpoint.{endpoint_name}.changed`` is cleared;
``requests`` lists them as ``RegistryRequest`` (``image_data(image, tag)``
answers); ``mark_completed()`` clears requests-pending.
"""
from charms.reactive import Endpoint, clear_flag, toggle_flag, when


class DockerRegistryProvides(Endpoint):

    @when('endpoint.{endpoint_name}.changed')
    def check_requests(self):
        toggle_flag(self.expand_name('requests-pending'),
                    len(self.requests) > 0)
        clear_flag(self.expand_name('changed'))

    @property
    def requests(self):
        if not hasattr(self, '_requests'):
            self._requests = [r for r in map(RegistryRequest,
                                             self.all_joined_units)
                              if r.is_changed]
        return self._requests

    def mark_completed(self):
        clear_flag(self.expand_name('requests-pending'))
        self._requests = []

    def set_registry_config(self, registry_netloc, **kwargs):
        data = dict(kwargs, registry_netloc=registry_netloc)
        for relation in self.relations:
            relation.to_publish.update(data)


class RegistryRequest:
    """One remote unit's request for an image in our registry."""

    def __init__(self, unit):
        self._unit = unit

    @property
    def has_image(self):
        return 'image' in self._unit.relation.to_publish

    @property
    def is_changed(self):
        return not self.has_image

    @property
    def unit_name(self):
        return self._unit.unit_name

    def image_data(self, image, tag):
        self._unit.relation.to_publish.update({'image': image, 'tag': tag})
