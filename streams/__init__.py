"""Processing: the domain rules (pure functions) and the Faust app that applies them."""
