"""htpasswd content for the registry's basic authentication (bcrypt, via passlib).

bcrypt salts every hash, so a fresh hash would change the file, and with it the container's
fingerprint, on every hook. `htpasswd_content` therefore keeps the existing entry while it
still verifies the configured user and password.
"""
BCRYPT_ROUNDS = 10


def htpasswd_content(user, password, existing=b''):
    # Imported here: passlib takes 70 ms to import, which every image action would pay
    # at start (they import registry_service for its paths).
    from passlib.apache import HtpasswdFile
    if existing:
        try:
            current = HtpasswdFile.from_string(existing)
            if current.users() == [user] and current.check_password(user, password):
                return existing
        except ValueError:
            pass  # unreadable: replaced below
    fresh = HtpasswdFile(default_scheme='bcrypt')
    # The registry checks the hash on every request a client makes; passlib's default cost
    # (12) takes ~0.25 s of CPU each time, which throttles pushes of many blobs.
    fresh.context = fresh.context.copy(bcrypt__rounds=BCRYPT_ROUNDS)
    fresh.set_password(user, password)
    return fresh.to_string()
