"""The pure core: models, desired bindings, the plan and status builders.

No I/O, no clock, no kopf, no clients: "now" and the namespace list are arguments.
"""
