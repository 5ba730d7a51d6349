"""The commands of ``harness``, one module per command or closely related group.

``harness.cli`` builds the group and registers them. Each module imports only click and light
engine modules at its top, and the rest inside its commands, so ``harness --help`` and the
commands that answer without a model (``list``, ``plugins``, ``validate``) stay instant.
"""
