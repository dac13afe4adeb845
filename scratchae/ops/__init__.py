"""The ops: each a ``Function`` with a hand-written forward and backward (see ``functional``)."""
