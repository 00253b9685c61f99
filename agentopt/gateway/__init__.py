"""gateway: filled by its issue."""
