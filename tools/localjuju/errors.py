"""The one error the runner's verbs raise: a refusal or a failure to report to the user."""


class LocalJujuError(Exception):
    pass
