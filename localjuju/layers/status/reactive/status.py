"""Stand-in for layer:status' reactive/status.py: initialise the layer when
the reactive framework discovers handlers."""
from charms.layer import status

status._initialize()
