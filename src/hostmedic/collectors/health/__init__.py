"""Collectors of the host-health category (seed 004: CPU, memory, disk, databases,
mounts, ping). :mod:`.source` is what ``gather.SOURCES['health']`` starts."""
