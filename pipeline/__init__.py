"""pipeline: build a Stack-v2-class source-code dataset from a Software Heritage graph export."""

__version__ = "0.1.0"
