"""htpasswd content for the registry's basic authentication (bcrypt, via passlib).

bcrypt salts every hash, so a fresh hash would change the file, and with it the container's
fingerprint, on every hook. `htpasswd_content` therefore keeps the existing entry while it
still verifies the configured user and password.
"""
BCRYPT_ROUNDS = 10


def htpasswd_content(user, password, *existing):
    """The htpasswd file for user and password: the first of existing (contents, or None)
    whose single entry verifies them, else a fresh bcrypt entry."""
    # Imported here: passlib takes 70 ms to import, which every image action would pay
    # at start (they import registry_files for its paths).
    from passlib.apache import HtpasswdFile
    for content in existing:
        if not content:
            continue
        try:
            current = HtpasswdFile.from_string(content)
            if current.users() == [user] and current.check_password(user, password):
                return content
        except ValueError:
            pass  # unreadable: replaced below
    fresh = HtpasswdFile(default_scheme='bcrypt')
    # The registry checks the hash on every request a client makes; passlib's default cost
    # (12) takes ~0.25 s of CPU each time, which throttles pushes of many blobs.
    fresh.context = fresh.context.copy(bcrypt__rounds=BCRYPT_ROUNDS)
    fresh.set_password(user, password)
    return fresh.to_string()
