"""Stand-in for interface:tls-certificates' tls_certificates_common module:
only ``Certificate`` (a dict with cert_type, common_name, cert, key, also
readable as attributes)."""


class Certificate(dict):
    def __init__(self, cert_type, common_name, cert, key):
        super().__init__(cert_type=cert_type, common_name=common_name,
                         cert=cert, key=key)

    cert_type = property(lambda self: self['cert_type'])
    common_name = property(lambda self: self['common_name'])
    cert = property(lambda self: self['cert'])
    key = property(lambda self: self['key'])
